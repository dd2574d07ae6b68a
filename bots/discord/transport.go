package discord

import (
	"context"
	"fmt"
	"net"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/bwmarrin/discordgo"
	"github.com/gorilla/websocket"
)

// gatewayReadBuffer is the socket receive buffer of the gateway connection.
// discordgo decodes dispatches one at a time; when a burst (hundreds of
// interactions and the messages they cause) outruns it, a small buffer
// fills and the kernel drops and waits for retransmissions, stalling every
// dispatch behind by 200 ms or more.
const gatewayReadBuffer = 4 << 20

// gatewayDialer returns discordgo's websocket dialer (proxy from the
// environment, 45 s handshake) with a larger receive buffer.
func gatewayDialer() *websocket.Dialer {
	return &websocket.Dialer{
		Proxy:            http.ProxyFromEnvironment,
		HandshakeTimeout: 45 * time.Second,
		NetDialContext: func(ctx context.Context, network, addr string) (net.Conn, error) {
			c, err := (&net.Dialer{}).DialContext(ctx, network, addr)
			if tc, ok := c.(*net.TCPConn); ok {
				_ = tc.SetReadBuffer(gatewayReadBuffer) // best effort: the default works, just slower in bursts
			}
			return c, err
		},
	}
}

// apiTransport sends discordgo's REST requests, which it addresses to
// https://discord.com/api/…, to the configured API root instead: discordgo
// has no base-URL option. Other requests pass through unchanged.
type apiTransport struct {
	api  *url.URL // the configured root, ending in "/"
	next http.RoundTripper
}

// newAPITransport returns next (http.DefaultTransport if nil), wrapped to
// rewrite requests to api when api is not Discord's own root.
func newAPITransport(api *url.URL, next http.RoundTripper) http.RoundTripper {
	if next == nil {
		next = http.DefaultTransport
	}
	if api.String() == discordgo.EndpointDiscord+"api/" {
		return next
	}
	return &apiTransport{api: api, next: next}
}

// RoundTrip rewrites scheme, host and path prefix of a request to Discord's
// API, keeping the rest of the path, its escaping and the query.
func (t *apiTransport) RoundTrip(r *http.Request) (*http.Response, error) {
	rest, ok := strings.CutPrefix(r.URL.String(), discordgo.EndpointDiscord+"api/")
	if !ok {
		return t.next.RoundTrip(r)
	}
	u, err := url.Parse(t.api.String() + rest)
	if err != nil {
		return nil, fmt.Errorf("discord: rewrite %s: %w", r.URL.Redacted(), err)
	}
	r = r.Clone(r.Context())
	r.URL, r.Host = u, ""
	return t.next.RoundTrip(r)
}
