package fhirrelay

import (
	"regexp"
	"strings"
)

// metadataKeys are the Stripe metadata keys that carry FHIR logical ids.
type metadataKeys struct {
	patient, claim, invoice string
}

func newMetadataKeys(cfg Config) metadataKeys {
	k := metadataKeys{
		patient: cfg.PatientMetadataKey,
		claim:   cfg.ClaimMetadataKey,
		invoice: cfg.InvoiceMetadataKey,
	}
	if k.patient == "" {
		k.patient = DefaultPatientMetadataKey
	}
	if k.claim == "" {
		k.claim = DefaultClaimMetadataKey
	}
	if k.invoice == "" {
		k.invoice = DefaultInvoiceMetadataKey
	}
	return k
}

// fhirRefs are the references a Stripe object's metadata yields; nil when absent or unusable.
type fhirRefs struct {
	patient, claim, invoice *Reference
}

// refs reads the FHIR references out of Stripe metadata.
func (k metadataKeys) refs(metadata map[string]string) fhirRefs {
	return fhirRefs{
		patient: metadataRef(metadata, k.patient, "Patient"),
		claim:   metadataRef(metadata, k.claim, "Claim"),
		invoice: metadataRef(metadata, k.invoice, "Invoice"),
	}
}

// billed is what the payment pays for, seen from the payer: the Claim, else the Invoice.
func (r fhirRefs) billed() *Reference {
	if r.claim != nil {
		return r.claim
	}
	return r.invoice
}

// allocated is the payable the money is allocated to: the Invoice (the bill actually
// settled), else the Claim.
func (r fhirRefs) allocated() *Reference {
	if r.invoice != nil {
		return r.invoice
	}
	return r.claim
}

// fhirID is the FHIR R4 id datatype: what a literal reference "<Type>/<id>" may carry.
var fhirID = regexp.MustCompile(`^[A-Za-z0-9\-.]{1,64}$`)

// metadataRef turns metadata[key] ("123" or "Claim/123") into a reference to resourceType.
// Metadata is free text typed by people: a value that is not a FHIR id is left out rather
// than sent, because the server would reject the whole write and Stripe would retry an
// event that can never succeed.
func metadataRef(metadata map[string]string, key, resourceType string) *Reference {
	id := strings.TrimSpace(metadata[key])
	id = strings.TrimPrefix(id, resourceType+"/")
	if !fhirID.MatchString(id) {
		return nil
	}
	return &Reference{Reference: resourceType + "/" + id}
}
