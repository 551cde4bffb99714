// Package jsonscan walks the members of a JSON object without decoding it: the receiver's hot
// path reads a handful of members out of a Stripe event that encoding/json has already
// validated, and encoding/json's own decode would scan those bytes once more to check them
// and once more to skip what is not read.
//
// It checks nothing. Callers hand it valid JSON (json.Valid, or bytes encoding/json passed to
// an UnmarshalJSON, which it validated first); on anything else it never panics or runs past
// the end, but what it reports is unspecified.
package jsonscan

// Members calls fn with the key (the bytes between its quotes, escapes unresolved) and the value
// (its bytes, without the space around them) of each member of the object that raw starts with,
// in order, until fn returns false. It reports whether it reached the object's end or fn's stop;
// false means raw is not a well-formed object.
func Members(raw []byte, fn func(key, value []byte) bool) bool {
	if len(raw) == 0 || raw[0] != '{' {
		return false
	}
	i := skipSpace(raw, 1)
	if i < len(raw) && raw[i] == '}' {
		return true
	}
	for i < len(raw) && raw[i] == '"' {
		end := skipString(raw, i)
		if end < 0 {
			return false
		}
		key := raw[i+1 : end-1]
		if i = skipSpace(raw, end); i >= len(raw) || raw[i] != ':' {
			return false
		}
		if i = skipSpace(raw, i+1); i >= len(raw) {
			return false
		}
		vend := SkipValue(raw, i)
		if vend < 0 {
			return false
		}
		if !fn(key, raw[i:vend]) {
			return true
		}
		switch i = skipSpace(raw, vend); {
		case i < len(raw) && raw[i] == ',':
			i = skipSpace(raw, i+1)
		case i < len(raw) && raw[i] == '}':
			return true
		default:
			return false
		}
	}
	return false
}

// SkipValue returns the index just past the value that starts at raw[i], or -1 when it does not
// end within raw.
func SkipValue(raw []byte, i int) int {
	if i < 0 || i >= len(raw) {
		return -1
	}
	switch raw[i] {
	case '"':
		return skipString(raw, i)
	case '{', '[':
		depth := 0
		for i < len(raw) {
			switch raw[i] {
			case '"':
				if i = skipString(raw, i); i < 0 {
					return -1
				}
				continue
			case '{', '[':
				depth++
			case '}', ']':
				if depth--; depth == 0 {
					return i + 1
				}
			}
			i++
		}
		return -1
	default: // number, true, false, null
		for i < len(raw) && !isDelimiter(raw[i]) {
			i++
		}
		return i
	}
}

func isDelimiter(c byte) bool {
	return c == ',' || c == '}' || c == ']' || c == ' ' || c == '\t' || c == '\n' || c == '\r'
}

// skipSpace returns the index of the first byte at or after i that is not JSON white space.
func skipSpace(raw []byte, i int) int {
	for i < len(raw) && (raw[i] == ' ' || raw[i] == '\t' || raw[i] == '\n' || raw[i] == '\r') {
		i++
	}
	return i
}

// skipString returns the index just past the string that starts at raw[i] ('"'), or -1 when it
// does not end within raw.
func skipString(raw []byte, i int) int {
	for i++; i < len(raw); i++ {
		switch raw[i] {
		case '\\':
			i++ // the escaped byte; a \uXXXX's hex digits are plain bytes
		case '"':
			return i + 1
		}
	}
	return -1
}
