// Command keepalive-peer runs grpc-go's keepalive (Debian's grpc-go 1.33, gRFC A8) on either
// side of a grpc.health.v1.Health service, for tests/keepalive_go.rs.
//
//	keepalive-peer client --addr HOST:PORT --time 10s --timeout 20s [--permit]
//	keepalive-peer server [--min_time 60s] [--permit] [--max_age 0] [--max_age_grace 0]
//
// client dials with keepalive.ClientParameters, makes one Check, then keeps a Watch of the
// whole server ("") open: it prints "status <STATUS>" for every message and "end <CODE>" when
// the stream ends. It stops when its stdin closes.
//
// server serves the health service (SERVING) on 127.0.0.1:0 with keepalive.EnforcementPolicy
// and keepalive.ServerParameters, prints "listening on <port>", then "conn begin" and
// "conn end" for every connection (a stats handler), and "calls <N>" when it stops (stdin
// closed).
package main

import (
	"bufio"
	"context"
	"flag"
	"fmt"
	"io"
	"io/ioutil"
	"net"
	"os"
	"sync"
	"sync/atomic"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/health"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	"google.golang.org/grpc/keepalive"
	"google.golang.org/grpc/stats"
	"google.golang.org/grpc/status"
)

var out = struct {
	sync.Mutex
	w *bufio.Writer
}{w: bufio.NewWriter(os.Stdout)}

// say prints one line and flushes it, so the test sees each event as it happens.
func say(format string, args ...interface{}) {
	out.Lock()
	defer out.Unlock()
	fmt.Fprintf(out.w, format+"\n", args...)
	out.w.Flush()
}

func main() {
	if len(os.Args) < 2 {
		fmt.Fprintln(os.Stderr, "usage: keepalive-peer client|server [flags]")
		os.Exit(2)
	}
	mode := os.Args[1]
	flags := flag.NewFlagSet(mode, flag.ExitOnError)
	addr := flags.String("addr", "", "client: server address")
	kaTime := flags.Duration("time", 10*time.Second, "client: keepalive.ClientParameters.Time")
	kaTimeout := flags.Duration("timeout", 20*time.Second, "client: keepalive.ClientParameters.Timeout")
	permit := flags.Bool("permit", false, "PermitWithoutStream (client and server)")
	minTime := flags.Duration("min_time", 5*time.Minute, "server: EnforcementPolicy.MinTime")
	maxAge := flags.Duration("max_age", 0, "server: ServerParameters.MaxConnectionAge (0: off)")
	maxAgeGrace := flags.Duration("max_age_grace", 0, "server: ServerParameters.MaxConnectionAgeGrace (0: off)")
	if err := flags.Parse(os.Args[2:]); err != nil {
		os.Exit(2)
	}
	// Everything is bounded, whatever the peer does; stdin closing is the test's "stop".
	ctx, cancel := context.WithTimeout(context.Background(), 180*time.Second)
	defer cancel()
	go func() {
		_, _ = io.Copy(ioutil.Discard, os.Stdin)
		cancel()
	}()
	switch mode {
	case "client":
		client(ctx, *addr, keepalive.ClientParameters{Time: *kaTime, Timeout: *kaTimeout, PermitWithoutStream: *permit})
	case "server":
		params := keepalive.ServerParameters{}
		if *maxAge > 0 {
			params.MaxConnectionAge = *maxAge
		}
		if *maxAgeGrace > 0 {
			params.MaxConnectionAgeGrace = *maxAgeGrace
		}
		server(ctx, keepalive.EnforcementPolicy{MinTime: *minTime, PermitWithoutStream: *permit}, params)
	default:
		fmt.Fprintln(os.Stderr, "unknown mode", mode)
		os.Exit(2)
	}
}

func client(ctx context.Context, addr string, params keepalive.ClientParameters) {
	dialCtx, cancelDial := context.WithTimeout(ctx, 10*time.Second)
	defer cancelDial()
	conn, err := grpc.DialContext(dialCtx, addr, grpc.WithInsecure(), grpc.WithBlock(), grpc.WithKeepaliveParams(params))
	if err != nil {
		say("dial error %v", err)
		os.Exit(2)
	}
	defer conn.Close()
	h := healthpb.NewHealthClient(conn)
	checked, err := h.Check(ctx, &healthpb.HealthCheckRequest{})
	if err != nil {
		say("check error %v", status.Code(err))
		os.Exit(3)
	}
	say("check %v", checked.GetStatus())
	stream, err := h.Watch(ctx, &healthpb.HealthCheckRequest{})
	if err != nil {
		say("end %v", status.Code(err))
		return
	}
	for {
		msg, err := stream.Recv()
		if err != nil {
			say("end %v", status.Code(err))
			return
		}
		say("status %v", msg.GetStatus())
	}
}

// connEvents prints connection begin and end.
type connEvents struct{}

func (connEvents) TagRPC(ctx context.Context, _ *stats.RPCTagInfo) context.Context { return ctx }
func (connEvents) HandleRPC(context.Context, stats.RPCStats)                       {}
func (connEvents) TagConn(ctx context.Context, _ *stats.ConnTagInfo) context.Context {
	return ctx
}
func (connEvents) HandleConn(_ context.Context, s stats.ConnStats) {
	switch s.(type) {
	case *stats.ConnBegin:
		say("conn begin")
	case *stats.ConnEnd:
		say("conn end")
	}
}

func server(ctx context.Context, policy keepalive.EnforcementPolicy, params keepalive.ServerParameters) {
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		fmt.Fprintln(os.Stderr, "listen:", err)
		os.Exit(2)
	}
	var calls int64
	count := func(ctx context.Context, req interface{}, info *grpc.UnaryServerInfo, handler grpc.UnaryHandler) (interface{}, error) {
		atomic.AddInt64(&calls, 1)
		return handler(ctx, req)
	}
	s := grpc.NewServer(
		grpc.KeepaliveEnforcementPolicy(policy),
		grpc.KeepaliveParams(params),
		grpc.StatsHandler(connEvents{}),
		grpc.UnaryInterceptor(count),
	)
	hs := health.NewServer()
	hs.SetServingStatus("", healthpb.HealthCheckResponse_SERVING)
	healthpb.RegisterHealthServer(s, hs)
	say("listening on %d", lis.Addr().(*net.TCPAddr).Port)
	go func() {
		<-ctx.Done()
		s.Stop()
	}()
	_ = s.Serve(lis)
	say("calls %d", atomic.LoadInt64(&calls))
}
