package httprelay

import (
	"bytes"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"strconv"
	"time"
)

// The Standard Webhooks headers (https://www.standardwebhooks.com/, spec in
// github.com/standard-webhooks/standard-webhooks/spec/standard-webhooks.md): the clinic verifies
// them with an off-the-shelf library in its own language instead of our code.
const (
	// HeaderWebhookID is the message id: the Stripe event id, the same on every redelivery of
	// the event, so it doubles as the deduplication key (as Idempotency-Key does).
	HeaderWebhookID = "webhook-id"
	// HeaderWebhookTimestamp is the send time in Unix seconds.
	HeaderWebhookTimestamp = "webhook-timestamp"
	// HeaderWebhookSignature is a space-separated list of "v1,<base64 HMAC-SHA256>" values.
	HeaderWebhookSignature = "webhook-signature"
)

// standardSecretPrefix marks a Standard Webhooks secret: "whsec_" and the key's base64.
const standardSecretPrefix = "whsec_"

// StandardKey is the HMAC key the Standard Webhooks signature uses for a key file's content.
// A file holding a Standard Webhooks secret ("whsec_" and standard base64) signs with the
// decoded bytes, as the libraries do when given that secret. Any other content signs with its
// own bytes, which a library takes as "whsec_" + base64(content) or through its raw-key
// constructor. Clinicpay-Signature keeps using the content's bytes as they are, as Stripe's own
// scheme uses a whsec_ secret, so one secret string verifies either header.
func StandardKey(content []byte) []byte {
	rest, ok := bytes.CutPrefix(content, []byte(standardSecretPrefix))
	if !ok {
		return content
	}
	key := make([]byte, base64.StdEncoding.DecodedLen(len(rest)))
	n, err := base64.StdEncoding.Decode(key, rest)
	if err != nil || n == 0 {
		return content
	}
	return key[:n]
}

// SignStandard returns the webhook-signature value for message id sent at t with body:
// "v1," and the base64 HMAC-SHA256, keyed with StandardKey(content), of "<id>.<t>.<body>".
func SignStandard(content []byte, id string, t time.Time, body []byte) string {
	mac := hmac.New(sha256.New, StandardKey(content))
	mac.Write([]byte(id))
	mac.Write([]byte{'.'})
	mac.Write(strconv.AppendInt(nil, t.Unix(), 10))
	mac.Write([]byte{'.'})
	mac.Write(body)
	return "v1," + base64.StdEncoding.EncodeToString(mac.Sum(nil))
}
