package controller

import (
	"reflect"
	"testing"

	paymentsv1alpha1 "github.com/clinicpay/stripe-operator/api/v1alpha1"
)

// TestStripeFacingSpecCoversEveryField sets each spec field in turn and checks that the view's key
// changes unless the field is one stripeBlind declares Stripe-blind, so a field added to the spec
// cannot be left out of the key by mistake.
func TestStripeFacingSpecCoversEveryField(t *testing.T) {
	t.Parallel()
	blind := map[string]bool{"InvoiceFooterDisclaimer": true, "Receiver": true}
	base := &paymentsv1alpha1.StripeIntegration{}
	key := stripeFacingSpec(base)
	typ := reflect.TypeOf(paymentsv1alpha1.StripeIntegrationSpec{})
	for i := range typ.NumField() {
		f := typ.Field(i)
		si := base.DeepCopy()
		setNonZero(t, reflect.ValueOf(&si.Spec).Elem().Field(i))
		changed := stripeFacingSpec(si) != key
		switch {
		case blind[f.Name] && changed:
			t.Errorf("spec.%s is Stripe-blind but changes the view's key", f.Name)
		case !blind[f.Name] && !changed:
			t.Errorf("spec.%s does not change the view's key: a pass after editing it would reuse a stale Stripe view", f.Name)
		}
	}
}

// setNonZero gives v a non-zero value: for a struct or pointer to struct, its first settable
// scalar field is set; strings, bools and numbers are set directly.
func setNonZero(t *testing.T, v reflect.Value) {
	t.Helper()
	switch v.Kind() {
	case reflect.String:
		v.SetString("x")
	case reflect.Bool:
		v.SetBool(true)
	case reflect.Int, reflect.Int32, reflect.Int64:
		v.SetInt(7)
	case reflect.Pointer:
		v.Set(reflect.New(v.Type().Elem()))
		setNonZero(t, v.Elem())
	case reflect.Struct:
		for i := range v.NumField() {
			if v.Field(i).CanSet() {
				setNonZero(t, v.Field(i))
				return
			}
		}
	case reflect.Slice:
		v.Set(reflect.MakeSlice(v.Type(), 1, 1))
		setNonZero(t, v.Index(0))
	case reflect.Map:
		v.Set(reflect.MakeMap(v.Type()))
	default:
		t.Fatalf("setNonZero: kind %s not handled", v.Kind())
	}
}
