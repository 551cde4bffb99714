package jsonscan

import (
	"bytes"
	"encoding/json"
	"reflect"
	"testing"
)

var seeds = []string{
	`{}`, ` {}`, `{"a":1}`, `{"a" : "x\"}" , "b":[1,{"c":"]"}],"d":{"e":null},"f":true,"g":-1.5e3}`,
	`{"\u0061":"\\","b":""}`, `{"a":{"b":{"c":[[[]]]}}}`, `[]`, `{"a":}`, `{"a"`, `{"a":"`, `{"a":1,}`, `{`, `"x"`, ``,
	`{"a":1}}`, `{"a":"\`, `{"a":[1,2}`, `{"a" 1}`,
}

// decodedMembers is what encoding/json makes of the object's members: key (escapes resolved)
// and value, in order.
func decodedMembers(t *testing.T, raw []byte) (keys []string, values []json.RawMessage) {
	t.Helper()
	dec := json.NewDecoder(bytes.NewReader(raw))
	if tok, err := dec.Token(); err != nil || tok != json.Delim('{') {
		t.Fatalf("not an object: %q", raw)
	}
	for dec.More() {
		tok, err := dec.Token()
		if err != nil {
			t.Fatal(err)
		}
		var v json.RawMessage
		if err := dec.Decode(&v); err != nil {
			t.Fatal(err)
		}
		keys, values = append(keys, tok.(string)), append(values, v)
	}
	return keys, values
}

// FuzzMembers: on valid JSON objects Members reports what encoding/json reads, member for
// member; on any bytes it neither panics nor hangs. Seeds run with every `go test`.
func FuzzMembers(f *testing.F) {
	for _, s := range seeds {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, raw []byte) {
		var keys []string
		var values []json.RawMessage
		ok := Members(raw, func(key, value []byte) bool {
			var k string
			if err := json.Unmarshal(append(append([]byte{'"'}, key...), '"'), &k); err != nil {
				k = "\x00invalid"
			}
			keys, values = append(keys, k), append(values, append(json.RawMessage(nil), value...))
			return true
		})
		if !json.Valid(raw) {
			return // anything but a panic
		}
		if len(raw) == 0 || raw[0] != '{' {
			if ok {
				t.Fatalf("Members(%q) reported a well-formed object", raw)
			}
			return
		}
		wantKeys, wantValues := decodedMembers(t, raw)
		if !ok || !reflect.DeepEqual(keys, wantKeys) || len(values) != len(wantValues) {
			t.Fatalf("Members(%q) = %v %q, %v; encoding/json reads %q", raw, ok, keys, values, wantKeys)
		}
		for i := range values {
			if string(values[i]) != string(wantValues[i]) {
				t.Fatalf("Members(%q): value %d is %q, encoding/json's %q", raw, i, values[i], wantValues[i])
			}
		}
	})
}

func TestMembersStopsWhenAsked(t *testing.T) {
	n := 0
	if !Members([]byte(`{"a":1,"b":2,"c":3}`), func(_, _ []byte) bool { n++; return n < 2 }) || n != 2 {
		t.Errorf("visited %d members, want 2", n)
	}
}

func TestSkipValueOutOfRange(t *testing.T) {
	for _, i := range []int{-1, 0, 5} {
		if got := SkipValue(nil, i); got != -1 {
			t.Errorf("SkipValue(nil, %d) = %d", i, got)
		}
	}
}
