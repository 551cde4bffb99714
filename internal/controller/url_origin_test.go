package controller

import (
	"net/url"
	"testing"
)

func TestURLOrigin(t *testing.T) {
	t.Parallel()
	cases := map[string]struct {
		raw        string
		want       origin
		normalized string
	}{
		"https default":          {"https://hooks.example/p", origin{"https", "hooks.example", "443"}, "https://hooks.example/p"},
		"https explicit default": {"https://hooks.example:443/p", origin{"https", "hooks.example", "443"}, "https://hooks.example/p"},
		"http default":           {"http://hooks.example/p", origin{"http", "hooks.example", "80"}, "http://hooks.example/p"},
		"http explicit default":  {"http://hooks.example:80/p", origin{"http", "hooks.example", "80"}, "http://hooks.example/p"},
		"other port":             {"https://hooks.example:8443/p", origin{"https", "hooks.example", "8443"}, "https://hooks.example:8443/p"},
		"http port on https":     {"https://hooks.example:80/p", origin{"https", "hooks.example", "80"}, "https://hooks.example:80/p"},
		"upper case":             {"HTTPS://HOOKS.Example:443/Path", origin{"https", "hooks.example", "443"}, "https://hooks.example/Path"},
		"empty port":             {"https://hooks.example:/p", origin{"https", "hooks.example", "443"}, "https://hooks.example/p"},
		"IPv6 default port":      {"https://[::1]:443/p", origin{"https", "::1", "443"}, "https://[::1]/p"},
		"IPv6 other port":        {"https://[::1]:8443/p", origin{"https", "::1", "8443"}, "https://[::1]:8443/p"},
		"other scheme":           {"ftp://files.example/p", origin{"ftp", "files.example", ""}, "ftp://files.example/p"},
		"other scheme, port":     {"FTP://Files.example:21/p", origin{"ftp", "files.example", "21"}, "ftp://files.example:21/p"},
	}
	for name, tc := range cases {
		t.Run(name, func(t *testing.T) {
			u, err := url.Parse(tc.raw)
			if err != nil {
				t.Fatal(err)
			}
			if got := urlOrigin(u); got != tc.want {
				t.Errorf("urlOrigin(%q) = %+v, want %+v", tc.raw, got, tc.want)
			}
			if got := normalizeURL(tc.raw); got != tc.normalized {
				t.Errorf("normalizeURL(%q) = %q, want %q", tc.raw, got, tc.normalized)
			}
		})
	}
}
