// Command auth-peer is the grpc-go peer of tests/async_auth.rs, on grpc.health.v1.Health
// (Debian's grpc-go 1.33 ships it generated, so no protoc step is needed).
//
//	auth-peer check --addr HOST:PORT [--token T] [--timeout 2s]
//	auth-peer serve --port 0 --stop_on_stdin_eof --accept_prefix good-
//
// check makes one Check("") call carrying "authorization: Bearer T" (when T is set) under the
// deadline, and prints "status <STATUS>" or "error <CODE>: <message>" (exit 0 either way; 2
// when it cannot connect).
//
// serve is a health server whose interceptor checks the bearer token of every call:
// no authorization entry, another scheme, or a token that does not start with the accepted
// prefix is UNAUTHENTICATED; an accepted call gets the token back in the response header
// "x-seen-token", so the test can tell which token reached the server. It prints
// "listening on <port>" and stops when its stdin closes.
package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"io/ioutil"
	"net"
	"os"
	"strings"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/health"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"
)

func main() {
	if len(os.Args) < 2 {
		usage()
	}
	mode := os.Args[1]
	flags := flag.NewFlagSet(mode, flag.ExitOnError)
	addr := flags.String("addr", "", "check: server address, host:port")
	token := flags.String("token", "", "check: the bearer token to send (none when empty)")
	timeout := flags.Duration("timeout", 2*time.Second, "check: the call's deadline")
	port := flags.Int("port", 0, "serve: TCP port on 127.0.0.1 (0 picks a free one)")
	stopOnEOF := flags.Bool("stop_on_stdin_eof", false, "serve: stop when stdin closes")
	prefix := flags.String("accept_prefix", "good-", "serve: tokens accepted start with this")
	if err := flags.Parse(os.Args[2:]); err != nil {
		usage()
	}
	switch mode {
	case "check":
		if *addr == "" {
			usage()
		}
		check(*addr, *token, *timeout)
	case "serve":
		serve(*port, *stopOnEOF, *prefix)
	default:
		usage()
	}
}

func usage() {
	fmt.Fprintln(os.Stderr, "usage: auth-peer check --addr HOST:PORT [--token T] [--timeout D] | serve --port P [--stop_on_stdin_eof] [--accept_prefix P]")
	os.Exit(1)
}

func check(addr, token string, timeout time.Duration) {
	dialCtx, dialCancel := context.WithTimeout(context.Background(), 10*time.Second)
	conn, err := grpc.DialContext(dialCtx, addr, grpc.WithInsecure(), grpc.WithBlock())
	dialCancel()
	if err != nil {
		fmt.Printf("error connect: %v\n", err)
		os.Exit(2)
	}
	defer conn.Close()
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	if token != "" {
		ctx = metadata.AppendToOutgoingContext(ctx, "authorization", "Bearer "+token)
	}
	resp, err := healthpb.NewHealthClient(conn).Check(ctx, &healthpb.HealthCheckRequest{})
	if err != nil {
		st := status.Convert(err)
		fmt.Printf("error %s: %s\n", st.Code(), st.Message())
		return
	}
	fmt.Printf("status %s\n", resp.GetStatus())
}

func serve(port int, stopOnEOF bool, prefix string) {
	lis, err := net.Listen("tcp", fmt.Sprintf("127.0.0.1:%d", port))
	if err != nil {
		fmt.Fprintf(os.Stderr, "listen: %v\n", err)
		os.Exit(1)
	}
	checkToken := func(ctx context.Context) error {
		md, _ := metadata.FromIncomingContext(ctx)
		values := md.Get("authorization")
		if len(values) != 1 {
			return status.Error(codes.Unauthenticated, "expected one authorization entry")
		}
		const scheme = "Bearer "
		if !strings.HasPrefix(values[0], scheme) {
			return status.Error(codes.Unauthenticated, "expected a Bearer token")
		}
		token := strings.TrimPrefix(values[0], scheme)
		if !strings.HasPrefix(token, prefix) {
			return status.Error(codes.Unauthenticated, "invalid token")
		}
		return grpc.SetHeader(ctx, metadata.Pairs("x-seen-token", token))
	}
	server := grpc.NewServer(
		grpc.UnaryInterceptor(func(ctx context.Context, req interface{}, info *grpc.UnaryServerInfo, handler grpc.UnaryHandler) (interface{}, error) {
			if err := checkToken(ctx); err != nil {
				return nil, err
			}
			return handler(ctx, req)
		}),
	)
	healthpb.RegisterHealthServer(server, health.NewServer())
	fmt.Printf("listening on %d\n", lis.Addr().(*net.TCPAddr).Port)
	if stopOnEOF {
		go func() {
			_, _ = io.Copy(ioutil.Discard, os.Stdin)
			server.Stop()
		}()
	}
	if err := server.Serve(lis); err != nil {
		fmt.Fprintf(os.Stderr, "serve: %v\n", err)
	}
}
