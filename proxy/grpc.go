package proxy

import (
	"net/http"
	"strconv"
	"strings"
	"time"

	"google.golang.org/grpc/codes"
)

// isGRPC reports whether r is a gRPC request.
func isGRPC(r *http.Request) bool {
	return strings.HasPrefix(r.Header.Get("Content-Type"), "application/grpc")
}

// grpcTimeout returns the deadline a gRPC client sent in its grpc-timeout header: an
// integer of at most 8 digits and a unit (H, M, S, m, u, n), as the gRPC HTTP/2 protocol
// defines it.
func grpcTimeout(h http.Header) (time.Duration, bool) {
	v := h.Get("Grpc-Timeout")
	if len(v) < 2 || len(v) > 9 {
		return 0, false
	}
	n, err := strconv.ParseInt(v[:len(v)-1], 10, 64)
	if err != nil || n < 0 {
		return 0, false
	}
	var unit time.Duration
	switch v[len(v)-1] {
	case 'H':
		unit = time.Hour
	case 'M':
		unit = time.Minute
	case 'S':
		unit = time.Second
	case 'm':
		unit = time.Millisecond
	case 'u':
		unit = time.Microsecond
	case 'n':
		unit = time.Nanosecond
	default:
		return 0, false
	}
	return time.Duration(n) * unit, true
}

// grpcCode is the gRPC status of a request the proxy answers itself with HTTP status
// status: a timeout is DEADLINE_EXCEEDED, as in Envoy; the rest follow gRPC's mapping of
// HTTP statuses.
func grpcCode(status int) codes.Code {
	switch status {
	case http.StatusGatewayTimeout:
		return codes.DeadlineExceeded
	case http.StatusBadRequest:
		return codes.Internal
	case http.StatusUnauthorized:
		return codes.Unauthenticated
	case http.StatusForbidden:
		return codes.PermissionDenied
	case http.StatusNotFound:
		return codes.Unimplemented
	case http.StatusTooManyRequests, http.StatusBadGateway, http.StatusServiceUnavailable:
		return codes.Unavailable
	}
	return codes.Unknown
}

// writeGRPCError answers a gRPC request the proxy could not forward with a trailers-only
// response (HTTP 200 and the status in grpc-status): a gRPC client reads an HTTP error
// status as UNAVAILABLE whatever it was, and loses the reason.
func writeGRPCError(w http.ResponseWriter, status int) {
	h := w.Header()
	h.Set("Content-Type", "application/grpc")
	h.Set("Grpc-Status", strconv.Itoa(int(grpcCode(status))))
	h.Set("Grpc-Message", http.StatusText(status))
	w.WriteHeader(http.StatusOK)
}
