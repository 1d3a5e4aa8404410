// Command health-server is a grpc-go server (Debian's grpc-go 1.33) with grpc-go's own health
// server, whose status the test flips, for tests/balancing_health.rs.
//
//	health-server --service NAME
//
// It listens on a free loopback port and prints "port N". Then it reads commands from stdin,
// one a line, and answers each with one line:
//
//	serving       sets NAME to SERVING              -> "ok"
//	not_serving   sets NAME to NOT_SERVING          -> "ok"
//	count         the unary calls it has served     -> "count N"
//
// Every unary call is counted (the test's workload is Health/Check; Watch streams are not
// unary, so the client's health checks are not counted). It stops when stdin closes.
package main

import (
	"bufio"
	"context"
	"flag"
	"fmt"
	"net"
	"os"
	"sync/atomic"

	"google.golang.org/grpc"
	"google.golang.org/grpc/health"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
)

func main() {
	service := flag.String("service", "", "the service name whose status stdin flips")
	flag.Parse()

	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		fmt.Fprintf(os.Stderr, "listen: %v\n", err)
		os.Exit(1)
	}
	var calls int64
	count := func(ctx context.Context, req interface{}, _ *grpc.UnaryServerInfo,
		handler grpc.UnaryHandler) (interface{}, error) {
		atomic.AddInt64(&calls, 1)
		return handler(ctx, req)
	}
	server := grpc.NewServer(grpc.UnaryInterceptor(count))
	healthServer := health.NewServer()
	healthServer.SetServingStatus(*service, healthpb.HealthCheckResponse_SERVING)
	healthpb.RegisterHealthServer(server, healthServer)
	go func() { _ = server.Serve(lis) }()
	fmt.Printf("port %d\n", lis.Addr().(*net.TCPAddr).Port)

	lines := bufio.NewScanner(os.Stdin)
	for lines.Scan() {
		switch lines.Text() {
		case "serving":
			healthServer.SetServingStatus(*service, healthpb.HealthCheckResponse_SERVING)
			fmt.Println("ok")
		case "not_serving":
			healthServer.SetServingStatus(*service, healthpb.HealthCheckResponse_NOT_SERVING)
			fmt.Println("ok")
		case "count":
			fmt.Printf("count %d\n", atomic.LoadInt64(&calls))
		default:
			fmt.Printf("unknown command %q\n", lines.Text())
		}
	}
	server.Stop()
}
