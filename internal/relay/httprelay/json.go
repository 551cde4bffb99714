package httprelay

import (
	"bytes"
	"encoding/json"
)

// jsonMarshal encodes without HTML escaping, so metadata such as "a&b" reaches the clinic as
// written rather than as "a\u0026b", and without the trailing newline of json.Encoder.
func jsonMarshal(v any) ([]byte, error) {
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(v); err != nil {
		return nil, err
	}
	return bytes.TrimSuffix(buf.Bytes(), []byte("\n")), nil
}
