package controller

import (
	"net"
	"net/url"
	"strings"
)

// origin is where an http(s) URL connects: scheme and host in lower case (both are
// case-insensitive) and the port, with the scheme's default made explicit. Two URLs with equal
// origins reach the same server, however they spell it.
type origin struct{ scheme, host, port string }

func urlOrigin(u *url.URL) origin {
	o := origin{scheme: strings.ToLower(u.Scheme), host: strings.ToLower(u.Hostname()), port: u.Port()}
	if o.port == "" {
		o.port = defaultPort(o.scheme)
	}
	return o
}

// hostPort is the origin's URL host: the port left out when it is the scheme's default, and an
// IPv6 address in brackets.
func (o origin) hostPort() string {
	if o.port == defaultPort(o.scheme) {
		if strings.Contains(o.host, ":") {
			return "[" + o.host + "]"
		}
		return o.host
	}
	return net.JoinHostPort(o.host, o.port)
}

// defaultPort is the port a scheme connects to when the URL names none; "" for other schemes.
func defaultPort(scheme string) string {
	switch scheme {
	case "https":
		return "443"
	case "http":
		return "80"
	}
	return ""
}
