// Command h2specserver serves h2c with package h2 on a loopback address, for h2spec:
//
//	go run ./proxy/h2/internal/h2specserver -addr 127.0.0.1:18443 &
//	cd "$(mktemp -d)" && go mod init h2spec-run && GOFLAGS=-mod=mod \
//		go run github.com/summerwind/h2spec/cmd/h2spec@v2.2.1+incompatible -h 127.0.0.1 -p 18443
//
// (h2spec has no go.mod, so it builds only in a throwaway module that may resolve its
// imports; v2.6.0 is not on the module proxy.) Each request's body is read and answered
// with a short text.
package main

import (
	"context"
	"flag"
	"io"
	"log"
	"net"

	"github.com/strait-gw/strait/proxy/h2"
)

func main() {
	addr := flag.String("addr", "127.0.0.1:18443", "loopback address to listen on")
	flag.Parse()
	ln, err := net.Listen("tcp", *addr)
	if err != nil {
		log.Fatal(err)
	}
	srv := &h2.Server{Handler: h2.HandlerFunc(func(s *h2.Stream) {
		_, _ = io.Copy(io.Discard, s)
		_ = s.WriteHead(200, []h2.Field{{Name: "content-type", Value: "text/plain"}})
		_, _ = io.WriteString(s, "hello h2spec\n")
	})}
	for {
		nc, err := ln.Accept()
		if err != nil {
			log.Fatal(err)
		}
		go func() { _ = srv.ServeConn(context.Background(), nc, nil) }()
	}
}
