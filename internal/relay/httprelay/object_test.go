package httprelay

import (
	"encoding/json"
	"reflect"
	"strings"
	"testing"
)

// objectCases are data.objects whose envelope Object must not depend on how it was read: as a
// map (objectFrom, stripe-go's Data.Object) or out of the raw JSON (objectFromRaw).
var objectCases = []string{
	`{"id":"pi_1","object":"payment_intent","amount":1234,"amount_received":1234,"currency":"usd","status":"succeeded",` +
		`"customer":"cus_1","invoice":null,"latest_charge":"ch_1","metadata":{"patient_id":"p-1","visit":"v-9"}}`,
	`{"id":"ch_1","object":"charge","amount":500,"amount_captured":500,"amount_refunded":200,"refunded":false,"paid":true,` +
		`"currency":"jpy","payment_intent":{"id":"pi_1","object":"payment_intent","amount":9},"customer":{"object":"customer"}}`,
	`{"id":"cus_1","object":"customer","email":"p@example.com","name":"A Patient","amount":3,"metadata":{"emr":"42"}}`,
	`{"id":"in_1","object":"invoice","amount_due":1e3,"amount_paid":12.5,"amount_remaining":-0,"currency":"BHD","amount":-1050}`,
	// Keys with escapes, a key that differs only in case, the last of duplicate keys.
	`{"\u0061mount":7,"Amount":8,"currency":"usd","id":"a","id":"b","status":"x","status":1}`,
	`{"metadata":{"a":"1","a":2,"b":"2","b\u0022":"q","c":{"d":"e"},"\u00e9":"\u00e9\n"}}`,
	`{"metadata":{"x":1}}`, `{"metadata":{}}`, `{"metadata":[]}`, `{"metadata":null}`, `{}`, `null`, "null \n", "\t{}\r\n", ` {"id" : "s p a c e s" } `,
	// Strings holding what a scanner could mistake for structure; members nested at depth.
	`{"description":"},{\"amount\":1,\"id\":\"x\"","id":"pi_\"q\"","nested":{"amount":5,"id":"no"},"list":[{"amount":6}],"amount":2}`,
	`{"amount":"12","amount_due":true,"refunded":"true","paid":null,"currency":5,"customer":["cus_1"],"charge":{"id":5}}`,
	`{"amount":9007199254740993,"amount_due":9007199254740992,"amount_paid":1.0,"amount_received":1E2,"amount_captured":-9007199254740992}`,
	// Invalid UTF-8 in a string (encoding/json makes it U+FFFD) and a long ASCII id.
	"{\"id\":\"pi_\xff\xfe\",\"status\":\"" + strings.Repeat("s", 300) + "\",\"metadata\":{\"k\xff\":\"v\xff\"}}",
}

// viaMap reads raw the way an event parsed by stripe-go is read: decoded into a map first.
func viaMap(raw []byte) (Object, error) {
	var m map[string]any
	if err := json.Unmarshal(raw, &m); err != nil {
		return Object{}, err
	}
	return objectFrom(m), nil
}

func checkSameObject(t *testing.T, raw []byte) {
	t.Helper()
	got, err := objectFromRaw(raw)
	want, mapErr := viaMap(raw)
	switch {
	case mapErr == nil && err != nil:
		t.Fatalf("objectFromRaw(%q) failed (%v) where the map decode did not", raw, err)
	case mapErr == nil && !reflect.DeepEqual(got, want):
		t.Fatalf("objectFromRaw(%q)\n got %+v\nwant %+v", raw, got, want)
	case !json.Valid(raw) && err == nil:
		t.Fatalf("objectFromRaw(%q) accepted invalid JSON", raw)
	case mapErr != nil && err == nil:
		// The one leniency: a valid object whose map decode failed on a number out of float64's range.
		var probe map[string]json.RawMessage
		if json.Unmarshal(raw, &probe) != nil {
			t.Fatalf("objectFromRaw(%q) accepted what is not a JSON object (map decode: %v)", raw, mapErr)
		}
		if _, isRange := mapErr.(*json.UnmarshalTypeError); !isRange {
			t.Fatalf("objectFromRaw(%q) accepted an object the map decode refused with %v", raw, mapErr)
		}
	}
}

func TestObjectFromRawMatchesMap(t *testing.T) {
	for _, c := range objectCases {
		checkSameObject(t, []byte(c))
	}
	for _, bad := range []string{`[1]`, `"x"`, `5`, `true`, `{"a":}`, `{"a":1`, ``, `{"a":1}x`, "\f{}", "{}\f"} {
		if _, err := objectFromRaw([]byte(bad)); err == nil {
			t.Errorf("objectFromRaw(%q) gave an Object", bad)
		}
	}
	// A number no float64 holds fails the map's decode; here only that field is left out.
	got, err := objectFromRaw([]byte(`{"id":"pi_1","amount":1e400,"amount_due":5}`))
	if err != nil || got.ID != "pi_1" || got.Amount != nil || got.AmountDue == nil || *got.AmountDue != 5 {
		t.Errorf("out-of-range number: got %+v, %v", got, err)
	}
}

// FuzzObjectFromRaw holds objectFromRaw to the map reading on arbitrary bytes; its seeds run
// with every `go test`.
func FuzzObjectFromRaw(f *testing.F) {
	for _, c := range objectCases {
		f.Add([]byte(c))
	}
	f.Fuzz(func(t *testing.T, raw []byte) { checkSameObject(t, raw) })
}

func BenchmarkObjectFrom(b *testing.B) {
	raw := []byte(objectCases[0])
	b.Run("map", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			if _, err := viaMap(raw); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("raw", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			if _, err := objectFromRaw(raw); err != nil {
				b.Fatal(err)
			}
		}
	})
}
