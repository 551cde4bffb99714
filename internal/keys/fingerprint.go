package keys

import (
	"crypto/sha256"
	"encoding/hex"
)

// Fingerprint returns "sha256:" and the first 16 hex characters of SHA-256 over both keys,
// so admins can tell whether a rotation was picked up without reading the Secret. The keys'
// entropy makes the truncated hash non-reversible; the NUL separator keeps ("ab","c") and
// ("a","bc") apart.
func Fingerprint(publishable, secret string) string {
	h := sha256.New()
	h.Write([]byte(publishable))
	h.Write([]byte{0})
	h.Write([]byte(secret))
	return "sha256:" + hex.EncodeToString(h.Sum(nil))[:16]
}
