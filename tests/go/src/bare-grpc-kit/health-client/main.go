// Command health-client drives a grpc.health.v1.Health server with grpc-go's own health
// packages (Debian's grpc-go 1.33), for tests/health.rs.
//
//	health-client check --addr HOST:PORT --service NAME [--timeout 100ms]
//	health-client watch --addr HOST:PORT --service NAME
//	health-client balancer --addr HOST:PORT --service NAME
//
// check is a Kubernetes-style probe (what grpc_health_probe does): connect first, then one
// Check under a short deadline. It prints "status <STATUS>" or "error <CODE>: <message>" and
// exits like grpc_health_probe: 0 SERVING, 4 any other status, 3 the call failed, 2 no
// connection.
//
// watch opens Watch and prints "status <STATUS>" for every message, then "end <CODE>" when
// the stream ends. It stops when its stdin closes, so the test controls its lifetime.
//
// balancer is grpc-go's client-side health checking (import of grpc/health plus a
// healthCheckConfig in the service config): grpc-go itself watches NAME, and the
// connection's state follows it. It prints "state <STATE>" at each change until stdin closes.
package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"io/ioutil"
	"os"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/connectivity"
	_ "google.golang.org/grpc/health" // registers client-side health checking
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	"google.golang.org/grpc/status"
)

func main() {
	if len(os.Args) < 2 {
		usage()
	}
	mode := os.Args[1]
	flags := flag.NewFlagSet(mode, flag.ExitOnError)
	addr := flags.String("addr", "", "server address, host:port")
	service := flags.String("service", "", "service name to ask about (\"\" = whole server)")
	timeout := flags.Duration("timeout", 100*time.Millisecond, "check: the Check call's deadline")
	connectTimeout := flags.Duration("connect_timeout", 5*time.Second, "bound on connecting")
	if err := flags.Parse(os.Args[2:]); err != nil || *addr == "" {
		usage()
	}

	// The whole run is bounded, whatever the server does.
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	if mode != "check" {
		go func() {
			// stdin closing is the test's "stop" signal for the long-running modes.
			_, _ = io.Copy(ioutil.Discard, os.Stdin)
			cancel()
		}()
	}

	opts := []grpc.DialOption{grpc.WithInsecure()}
	if mode == "balancer" {
		opts = append(opts, grpc.WithDefaultServiceConfig(fmt.Sprintf(
			`{"loadBalancingConfig": [{"round_robin": {}}], "healthCheckConfig": {"serviceName": %q}}`,
			*service)))
	} else {
		opts = append(opts, grpc.WithBlock())
	}
	dialCtx, dialCancel := context.WithTimeout(ctx, *connectTimeout)
	conn, err := grpc.DialContext(dialCtx, *addr, opts...)
	dialCancel()
	if err != nil {
		fmt.Printf("error connect: %v\n", err)
		os.Exit(2)
	}
	defer conn.Close()
	client := healthpb.NewHealthClient(conn)

	switch mode {
	case "check":
		os.Exit(check(ctx, client, *service, *timeout))
	case "watch":
		os.Exit(watch(ctx, client, *service))
	case "balancer":
		os.Exit(balancer(ctx, conn))
	default:
		usage()
	}
}

func usage() {
	fmt.Fprintln(os.Stderr, "usage: health-client check|watch|balancer --addr HOST:PORT --service NAME [--timeout D]")
	os.Exit(1)
}

func check(ctx context.Context, client healthpb.HealthClient, service string, timeout time.Duration) int {
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	start := time.Now()
	resp, err := client.Check(ctx, &healthpb.HealthCheckRequest{Service: service})
	elapsed := time.Since(start)
	fmt.Fprintf(os.Stderr, "check took %v\n", elapsed)
	if err != nil {
		st := status.Convert(err)
		fmt.Printf("error %s: %s\n", codeName(st.Code().String()), st.Message())
		return 3
	}
	fmt.Printf("status %s\n", resp.GetStatus())
	if resp.GetStatus() != healthpb.HealthCheckResponse_SERVING {
		return 4
	}
	return 0
}

func watch(ctx context.Context, client healthpb.HealthClient, service string) int {
	stream, err := client.Watch(ctx, &healthpb.HealthCheckRequest{Service: service})
	if err != nil {
		fmt.Printf("end %s\n", codeName(status.Code(err).String()))
		return 3
	}
	for {
		resp, err := stream.Recv()
		if err != nil {
			if err == io.EOF {
				fmt.Println("end OK")
				return 0
			}
			fmt.Printf("end %s\n", codeName(status.Code(err).String()))
			return 0
		}
		fmt.Printf("status %s\n", resp.GetStatus())
	}
}

func balancer(ctx context.Context, conn *grpc.ClientConn) int {
	// grpc-go 1.33 starts connecting at Dial. CONNECTING and IDLE are steps on the way;
	// only the settled states are printed, each time they change.
	printed := connectivity.Shutdown
	state := conn.GetState()
	for {
		if (state == connectivity.Ready || state == connectivity.TransientFailure) && state != printed {
			fmt.Printf("state %s\n", state)
			printed = state
		}
		if !conn.WaitForStateChange(ctx, state) {
			return 0
		}
		state = conn.GetState()
	}
}

// codeName turns grpc-go's code names ("NotFound") into statuscodes.md's ("NOT_FOUND").
func codeName(camel string) string {
	out := make([]byte, 0, len(camel)+4)
	for i := 0; i < len(camel); i++ {
		c := camel[i]
		if c >= 'A' && c <= 'Z' {
			if i > 0 {
				out = append(out, '_')
			}
			out = append(out, c)
		} else {
			out = append(out, c-'a'+'A')
		}
	}
	return string(out)
}
