// Command client is bare-grpc's grpc-go interop client: one case of
// interop-test-descriptions.md per run, against any grpc.testing.TestService server
// (bare-grpc's own in CI), over a real grpc-go 1.33 stack.
//
//	client --server_host=localhost --server_port=N --test_case=NAME [--use_tls=false]
//	client ... --use_tls --use_test_ca --ca_file=F [--server_host_override=NAME]
//	        [--client_cert_file=F --client_key_file=F]
//
// With --use_tls it dials with credentials.NewClientTLSFromFile (the CA of --ca_file, the
// name of --server_host_override), or with a client certificate as well (mutual TLS).
//
// On success it prints "PASS <case>" and exits 0; on failure it prints "FAIL <case>: why"
// to stderr and exits 1; bad flags exit 2. Each case runs under one context deadline
// (--case_timeout, 10 s by default), so no wait is unbounded.
//
// What it adds to the descriptions, and why:
//   - server_compressed_*: grpc-go 1.33 sends grpc-accept-encoding only when it compresses
//     its own request, so these cases add `grpc-accept-encoding: gzip` themselves (this
//     client can decode gzip): the server then has no reason to withhold compression.
//   - the compressed flag of each message is read from grpc-go's stats events (package
//     interop), both for what the server sent and to confirm what this client sent.
//   - client_compressed_streaming needs one compressed and one uncompressed message on the
//     same gzip stream; grpc-go compresses a whole stream, so the uncompressed message is
//     prepared (grpc.PreparedMsg) on the uncompressed probe stream and sent as is.
package main

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"flag"
	"fmt"
	"io"
	"io/ioutil"
	"net"
	"os"
	"sort"
	"strconv"
	"strings"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/connectivity"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/resolver"
	"google.golang.org/grpc/resolver/manual"
	"google.golang.org/grpc/encoding/gzip"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"

	pb "generated/grpc_testing"

	"bare-grpc-interop/interop"
)

// env is what every case gets: the stubs over one connection and the case's context.
type env struct {
	ctx   context.Context
	conn  *grpc.ClientConn
	test  pb.TestServiceClient
	unimp pb.UnimplementedServiceClient
}

var cases = map[string]func(env) error{
	"empty_unary":                 emptyUnary,
	"large_unary":                 largeUnary,
	"client_streaming":            clientStreaming,
	"server_streaming":            serverStreaming,
	"ping_pong":                   pingPong,
	"empty_stream":                emptyStream,
	"timeout_on_sleeping_server":  timeoutOnSleepingServer,
	"cancel_after_begin":          cancelAfterBegin,
	"cancel_after_first_response": cancelAfterFirstResponse,
	"status_code_and_message":     statusCodeAndMessage,
	"special_status_message":      specialStatusMessage,
	"custom_metadata":             customMetadata,
	"unimplemented_method":        unimplementedMethod,
	"unimplemented_service":       unimplementedService,
	"client_compressed_unary":     clientCompressedUnary,
	"server_compressed_unary":     serverCompressedUnary,
	"client_compressed_streaming": clientCompressedStreaming,
	"server_compressed_streaming": serverCompressedStreaming,
}

func main() {
	host := flag.String("server_host", "localhost", "server host name or address")
	port := flag.Int("server_port", 0, "server port (required)")
	testCase := flag.String("test_case", "", "interop case to run, one of: "+caseNames())
	useTLS := flag.Bool("use_tls", false, "dial over TLS")
	useTestCA := flag.Bool("use_test_ca", false, "trust --ca_file instead of the system roots")
	caFile := flag.String("ca_file", "", "PEM CA certificate to trust (with --use_test_ca)")
	override := flag.String("server_host_override", "", "the name checked against the server certificate")
	clientCert := flag.String("client_cert_file", "", "PEM client certificate (mutual TLS)")
	clientKey := flag.String("client_key_file", "", "PEM client private key (mutual TLS)")
	timeout := flag.Duration("case_timeout", 10*time.Second, "deadline for the whole case")
	target := flag.String("target", "", "dial this target (e.g. unix:///path) instead of --server_host/--server_port")
	addresses := flag.String("addresses", "", "comma-separated host:port list, given to the channel by a manual resolver")
	lbPolicy := flag.String("lb_policy", "", "load-balancing policy (pick_first, round_robin) as a service config")
	repeat := flag.Int("repeat", 1, "run the case this many times on one channel")
	flag.Parse()

	if *addresses != "" {
		r := manual.NewBuilderWithScheme("lbtest")
		var list []resolver.Address
		for _, a := range strings.Split(*addresses, ",") {
			list = append(list, resolver.Address{Addr: a})
		}
		r.InitialState(resolver.State{Addresses: list})
		resolver.Register(r)
		*target = "lbtest:///backends"
	}

	run, ok := cases[*testCase]
	switch {
	case *target != "":
	case *port <= 0 || *port > 65535:
		usage("--server_port must be a port number")
	case !ok:
		usage(fmt.Sprintf("unknown --test_case %q; known: %s", *testCase, caseNames()))
	}

	ctx, cancel := context.WithTimeout(context.Background(), *timeout)
	defer cancel()
	security := grpc.WithInsecure()
	if *useTLS {
		security = grpc.WithTransportCredentials(clientTLS(*useTestCA, *caFile, *override, *clientCert, *clientKey))
	}
	dialTarget := net.JoinHostPort(*host, strconv.Itoa(*port))
	if *target != "" {
		dialTarget = *target
	}
	dialOptions := []grpc.DialOption{security, grpc.WithStatsHandler(interop.StatsHandler{})}
	if *lbPolicy != "" {
		dialOptions = append(dialOptions, grpc.WithDefaultServiceConfig(
			fmt.Sprintf(`{"loadBalancingConfig": [{%q: {}}]}`, *lbPolicy)))
	}
	conn, err := grpc.DialContext(ctx, dialTarget, dialOptions...)
	if err != nil {
		fail(*testCase, fmt.Errorf("dial: %w", err))
	}
	defer conn.Close()

	e := env{ctx: ctx, conn: conn, test: pb.NewTestServiceClient(conn), unimp: pb.NewUnimplementedServiceClient(conn)}
	for i := 0; i < *repeat; i++ {
		if err := run(e); err != nil {
			fail(*testCase, err)
		}
	}
	fmt.Printf("PASS %s\n", *testCase)
}

// clientTLS builds the TLS credentials of --use_tls: NewClientTLSFromFile when there is no
// client certificate, a tls.Config with one otherwise.
func clientTLS(useTestCA bool, caFile, override, certFile, keyFile string) credentials.TransportCredentials {
	if useTestCA && caFile == "" {
		usage("--use_test_ca needs --ca_file")
	}
	if certFile == "" {
		if !useTestCA {
			return credentials.NewTLS(&tls.Config{ServerName: override})
		}
		creds, err := credentials.NewClientTLSFromFile(caFile, override)
		if err != nil {
			usage(fmt.Sprintf("--ca_file: %v", err))
		}
		return creds
	}
	pair, err := tls.LoadX509KeyPair(certFile, keyFile)
	if err != nil {
		usage(fmt.Sprintf("--client_cert_file/--client_key_file: %v", err))
	}
	config := &tls.Config{ServerName: override, Certificates: []tls.Certificate{pair}}
	if useTestCA {
		pem, err := ioutil.ReadFile(caFile)
		if err != nil {
			usage(fmt.Sprintf("--ca_file: %v", err))
		}
		config.RootCAs = x509.NewCertPool()
		if !config.RootCAs.AppendCertsFromPEM(pem) {
			usage("--ca_file holds no PEM certificate")
		}
	}
	return credentials.NewTLS(config)
}

func caseNames() string {
	names := make([]string, 0, len(cases))
	for n := range cases {
		names = append(names, n)
	}
	sort.Strings(names)
	s := ""
	for i, n := range names {
		if i > 0 {
			s += ", "
		}
		s += n
	}
	return s
}

func usage(msg string) {
	fmt.Fprintf(os.Stderr, "client: %s\n", msg)
	os.Exit(2)
}

func fail(testCase string, err error) {
	fmt.Fprintf(os.Stderr, "FAIL %s: %v\n", testCase, err)
	os.Exit(1)
}

// wantCode checks that err is a gRPC status with the given code (and message, when
// message is not nil).
func wantCode(what string, err error, code codes.Code, message *string) error {
	if err == nil {
		return fmt.Errorf("%s: succeeded, want status %v", what, code)
	}
	st, ok := status.FromError(err)
	if !ok {
		return fmt.Errorf("%s: error %v is not a gRPC status, want %v", what, err, code)
	}
	if st.Code() != code {
		return fmt.Errorf("%s: status %v (%q), want %v", what, st.Code(), st.Message(), code)
	}
	if message != nil && st.Message() != *message {
		return fmt.Errorf("%s: status message %q, want %q", what, st.Message(), *message)
	}
	return nil
}

// --- plain calls -------------------------------------------------------------------

func emptyUnary(e env) error {
	resp, err := e.test.EmptyCall(e.ctx, &pb.Empty{})
	if err != nil {
		return fmt.Errorf("EmptyCall: %w", err)
	}
	if resp == nil {
		return errors.New("EmptyCall: nil response")
	}
	if n := proto.Size(resp); n != 0 {
		return fmt.Errorf("EmptyCall: response serializes to %d bytes, want 0", n)
	}
	return nil
}

func largeUnaryRequest() *pb.SimpleRequest {
	return &pb.SimpleRequest{
		ResponseType: pb.PayloadType_COMPRESSABLE,
		ResponseSize: 314159,
		Payload:      interop.ZeroPayload(271828),
	}
}

func largeUnary(e env) error {
	resp, err := e.test.UnaryCall(e.ctx, largeUnaryRequest())
	if err != nil {
		return fmt.Errorf("UnaryCall: %w", err)
	}
	return interop.CheckZeroPayload(resp.GetPayload(), 314159)
}

func clientStreaming(e env) error {
	stream, err := e.test.StreamingInputCall(e.ctx)
	if err != nil {
		return fmt.Errorf("StreamingInputCall: %w", err)
	}
	for _, n := range []int{27182, 8, 1828, 45904} {
		if err := stream.Send(&pb.StreamingInputCallRequest{Payload: interop.ZeroPayload(n)}); err != nil {
			return fmt.Errorf("send %d bytes: %w", n, err)
		}
	}
	resp, err := stream.CloseAndRecv()
	if err != nil {
		return fmt.Errorf("CloseAndRecv: %w", err)
	}
	if got := resp.GetAggregatedPayloadSize(); got != 74922 {
		return fmt.Errorf("aggregated_payload_size %d, want 74922", got)
	}
	return nil
}

var streamSizes = []int{31415, 9, 2653, 58979}

func serverStreaming(e env) error {
	req := &pb.StreamingOutputCallRequest{ResponseType: pb.PayloadType_COMPRESSABLE}
	for _, n := range streamSizes {
		req.ResponseParameters = append(req.ResponseParameters, &pb.ResponseParameters{Size: int32(n)})
	}
	stream, err := e.test.StreamingOutputCall(e.ctx, req)
	if err != nil {
		return fmt.Errorf("StreamingOutputCall: %w", err)
	}
	return recvSizes(stream.Recv, streamSizes)
}

// recvSizes reads responses until the end of the stream and checks their payload sizes.
func recvSizes(recv func() (*pb.StreamingOutputCallResponse, error), want []int) error {
	for i := 0; ; i++ {
		resp, err := recv()
		if err == io.EOF {
			if i != len(want) {
				return fmt.Errorf("stream ended after %d responses, want %d", i, len(want))
			}
			return nil
		}
		if err != nil {
			return fmt.Errorf("response %d: %w", i, err)
		}
		if i >= len(want) {
			return fmt.Errorf("more than %d responses", len(want))
		}
		if err := interop.CheckZeroPayload(resp.GetPayload(), want[i]); err != nil {
			return fmt.Errorf("response %d: %w", i, err)
		}
	}
}

func pingPong(e env) error {
	stream, err := e.test.FullDuplexCall(e.ctx)
	if err != nil {
		return fmt.Errorf("FullDuplexCall: %w", err)
	}
	requestSizes := []int{27182, 8, 1828, 45904}
	for i, n := range streamSizes {
		req := &pb.StreamingOutputCallRequest{
			ResponseType:       pb.PayloadType_COMPRESSABLE,
			ResponseParameters: []*pb.ResponseParameters{{Size: int32(n)}},
			Payload:            interop.ZeroPayload(requestSizes[i]),
		}
		if err := stream.Send(req); err != nil {
			return fmt.Errorf("send %d: %w", i, err)
		}
		resp, err := stream.Recv()
		if err != nil {
			return fmt.Errorf("response %d: %w", i, err)
		}
		if err := interop.CheckZeroPayload(resp.GetPayload(), n); err != nil {
			return fmt.Errorf("response %d: %w", i, err)
		}
	}
	if err := stream.CloseSend(); err != nil {
		return fmt.Errorf("CloseSend: %w", err)
	}
	if _, err := stream.Recv(); err != io.EOF {
		return fmt.Errorf("after half-close: got %v, want the end of the stream with OK", err)
	}
	return nil
}

func emptyStream(e env) error {
	stream, err := e.test.FullDuplexCall(e.ctx)
	if err != nil {
		return fmt.Errorf("FullDuplexCall: %w", err)
	}
	if err := stream.CloseSend(); err != nil {
		return fmt.Errorf("CloseSend: %w", err)
	}
	resp, err := stream.Recv()
	if err == nil {
		return fmt.Errorf("got a response (%d payload bytes), want none", len(resp.GetPayload().GetBody()))
	}
	if err != io.EOF {
		return fmt.Errorf("Recv: %w", err)
	}
	return nil
}

// --- deadlines and cancellation ----------------------------------------------------

func timeoutOnSleepingServer(e env) error {
	// Connect first, so the 1 ms goes to the call and the server sees its grpc-timeout,
	// rather than all of it going to the TCP and HTTP/2 handshakes.
	for s := e.conn.GetState(); s != connectivity.Ready; s = e.conn.GetState() {
		if !e.conn.WaitForStateChange(e.ctx, s) {
			return fmt.Errorf("connection not ready (state %v): %w", s, e.ctx.Err())
		}
	}
	ctx, cancel := context.WithTimeout(e.ctx, time.Millisecond)
	defer cancel()
	stream, err := e.test.FullDuplexCall(ctx)
	if err != nil {
		// The 1 ms may run out before the stream even starts; the status must still say so.
		return wantCode("FullDuplexCall", err, codes.DeadlineExceeded, nil)
	}
	// A send may fail once the deadline has passed; the status comes from Recv.
	_ = stream.Send(&pb.StreamingOutputCallRequest{Payload: interop.ZeroPayload(27182)})
	_, err = stream.Recv()
	return wantCode("Recv", err, codes.DeadlineExceeded, nil)
}

func cancelAfterBegin(e env) error {
	ctx, cancel := context.WithCancel(e.ctx)
	defer cancel()
	stream, err := e.test.StreamingInputCall(ctx)
	if err != nil {
		return fmt.Errorf("StreamingInputCall: %w", err)
	}
	cancel()
	_, err = stream.CloseAndRecv()
	return wantCode("CloseAndRecv after cancel", err, codes.Canceled, nil)
}

func cancelAfterFirstResponse(e env) error {
	ctx, cancel := context.WithCancel(e.ctx)
	defer cancel()
	stream, err := e.test.FullDuplexCall(ctx)
	if err != nil {
		return fmt.Errorf("FullDuplexCall: %w", err)
	}
	req := &pb.StreamingOutputCallRequest{
		ResponseType:       pb.PayloadType_COMPRESSABLE,
		ResponseParameters: []*pb.ResponseParameters{{Size: 31415}},
		Payload:            interop.ZeroPayload(27182),
	}
	if err := stream.Send(req); err != nil {
		return fmt.Errorf("send: %w", err)
	}
	resp, err := stream.Recv()
	if err != nil {
		return fmt.Errorf("first response: %w", err)
	}
	if err := interop.CheckZeroPayload(resp.GetPayload(), 31415); err != nil {
		return fmt.Errorf("first response: %w", err)
	}
	cancel()
	_, err = stream.Recv()
	return wantCode("Recv after cancel", err, codes.Canceled, nil)
}

// --- status and metadata -----------------------------------------------------------

func statusCodeAndMessage(e env) error {
	msg := "test status message"
	echo := &pb.EchoStatus{Code: int32(codes.Unknown), Message: msg}
	_, err := e.test.UnaryCall(e.ctx, &pb.SimpleRequest{ResponseStatus: echo})
	if err := wantCode("UnaryCall", err, codes.Unknown, &msg); err != nil {
		return err
	}
	stream, err := e.test.FullDuplexCall(e.ctx)
	if err != nil {
		return fmt.Errorf("FullDuplexCall: %w", err)
	}
	if err := stream.Send(&pb.StreamingOutputCallRequest{ResponseStatus: echo}); err != nil {
		return fmt.Errorf("FullDuplexCall send: %w", err)
	}
	if err := stream.CloseSend(); err != nil {
		return fmt.Errorf("FullDuplexCall CloseSend: %w", err)
	}
	_, err = stream.Recv()
	return wantCode("FullDuplexCall", err, codes.Unknown, &msg)
}

func specialStatusMessage(e env) error {
	msg := "\t\ntest with whitespace\r\nand Unicode BMP \u263a and non-BMP \U0001f608\t\n"
	echo := &pb.EchoStatus{Code: int32(codes.Unknown), Message: msg}
	_, err := e.test.UnaryCall(e.ctx, &pb.SimpleRequest{ResponseStatus: echo})
	return wantCode("UnaryCall", err, codes.Unknown, &msg)
}

const (
	echoInitialKey    = "x-grpc-test-echo-initial"
	echoInitialValue  = "test_initial_metadata_value"
	echoTrailingKey   = "x-grpc-test-echo-trailing-bin"
	echoTrailingValue = "\xab\xab\xab"
)

// checkEcho checks the echoed keys: exactly one value each, in the right place.
func checkEcho(what string, header, trailer metadata.MD) error {
	if got := header.Get(echoInitialKey); len(got) != 1 || got[0] != echoInitialValue {
		return fmt.Errorf("%s: initial metadata %s = %q, want [%q]", what, echoInitialKey, got, echoInitialValue)
	}
	if got := trailer.Get(echoTrailingKey); len(got) != 1 || got[0] != echoTrailingValue {
		return fmt.Errorf("%s: trailing metadata %s = %x, want [ababab]", what, echoTrailingKey, got)
	}
	return nil
}

func customMetadata(e env) error {
	ctx := metadata.AppendToOutgoingContext(e.ctx,
		echoInitialKey, echoInitialValue, echoTrailingKey, echoTrailingValue)

	var header, trailer metadata.MD
	resp, err := e.test.UnaryCall(ctx, largeUnaryRequest(), grpc.Header(&header), grpc.Trailer(&trailer))
	if err != nil {
		return fmt.Errorf("UnaryCall: %w", err)
	}
	if err := interop.CheckZeroPayload(resp.GetPayload(), 314159); err != nil {
		return fmt.Errorf("UnaryCall: %w", err)
	}
	if err := checkEcho("UnaryCall", header, trailer); err != nil {
		return err
	}

	stream, err := e.test.FullDuplexCall(ctx)
	if err != nil {
		return fmt.Errorf("FullDuplexCall: %w", err)
	}
	req := &pb.StreamingOutputCallRequest{
		ResponseType:       pb.PayloadType_COMPRESSABLE,
		ResponseParameters: []*pb.ResponseParameters{{Size: 314159}},
		Payload:            interop.ZeroPayload(271828),
	}
	if err := stream.Send(req); err != nil {
		return fmt.Errorf("FullDuplexCall send: %w", err)
	}
	if err := stream.CloseSend(); err != nil {
		return fmt.Errorf("FullDuplexCall CloseSend: %w", err)
	}
	if err := recvSizes(stream.Recv, []int{314159}); err != nil {
		return fmt.Errorf("FullDuplexCall: %w", err)
	}
	header, err = stream.Header()
	if err != nil {
		return fmt.Errorf("FullDuplexCall headers: %w", err)
	}
	return checkEcho("FullDuplexCall", header, stream.Trailer())
}

func unimplementedMethod(e env) error {
	_, err := e.test.UnimplementedCall(e.ctx, &pb.Empty{})
	return wantCode("TestService/UnimplementedCall", err, codes.Unimplemented, nil)
}

func unimplementedService(e env) error {
	_, err := e.unimp.UnimplementedCall(e.ctx, &pb.Empty{})
	return wantCode("UnimplementedService/UnimplementedCall", err, codes.Unimplemented, nil)
}

// --- compression -------------------------------------------------------------------

// checkFlags compares the compressed flag of each logged message with want.
func checkFlags(what string, msgs []interop.Message, want []bool) error {
	if len(msgs) != len(want) {
		return fmt.Errorf("%s: %d messages recorded, want %d", what, len(msgs), len(want))
	}
	for i, m := range msgs {
		if m.Compressed() != want[i] {
			return fmt.Errorf("%s: message %d compressed flag is %v, want %v (%d bytes on the wire for %d)",
				what, i, m.Compressed(), want[i], m.WireLength, m.Length)
		}
	}
	return nil
}

func expectCompressedRequest(expect bool) *pb.SimpleRequest {
	req := largeUnaryRequest()
	req.ExpectCompressed = &pb.BoolValue{Value: expect}
	return req
}

func clientCompressedUnary(e env) error {
	// Probe: an uncompressed message that claims to be compressed must be refused.
	_, err := e.test.UnaryCall(e.ctx, expectCompressedRequest(true))
	if err := wantCode("probe (uncompressed, expect_compressed=true)", err, codes.InvalidArgument, nil); err != nil {
		return err
	}

	ctx, log := interop.WithCallLog(e.ctx)
	resp, err := e.test.UnaryCall(ctx, expectCompressedRequest(true), grpc.UseCompressor(gzip.Name))
	if err != nil {
		return fmt.Errorf("compressed call: %w", err)
	}
	if err := interop.CheckZeroPayload(resp.GetPayload(), 314159); err != nil {
		return fmt.Errorf("compressed call: %w", err)
	}
	if err := checkFlags("compressed call, sent", log.Outbound(), []bool{true}); err != nil {
		return err
	}

	ctx, log = interop.WithCallLog(e.ctx)
	resp, err = e.test.UnaryCall(ctx, expectCompressedRequest(false))
	if err != nil {
		return fmt.Errorf("uncompressed call: %w", err)
	}
	if err := interop.CheckZeroPayload(resp.GetPayload(), 314159); err != nil {
		return fmt.Errorf("uncompressed call: %w", err)
	}
	return checkFlags("uncompressed call, sent", log.Outbound(), []bool{false})
}

// acceptGzip says, in the request headers, that this client decodes gzip responses.
func acceptGzip(ctx context.Context) context.Context {
	return metadata.AppendToOutgoingContext(ctx, "grpc-accept-encoding", gzip.Name)
}

func serverCompressedUnary(e env) error {
	for _, compressed := range []bool{true, false} {
		what := fmt.Sprintf("response_compressed=%v", compressed)
		req := largeUnaryRequest()
		req.ResponseCompressed = &pb.BoolValue{Value: compressed}
		ctx, log := interop.WithCallLog(acceptGzip(e.ctx))
		resp, err := e.test.UnaryCall(ctx, req)
		if err != nil {
			return fmt.Errorf("%s: %w", what, err)
		}
		if err := interop.CheckZeroPayload(resp.GetPayload(), 314159); err != nil {
			return fmt.Errorf("%s: %w", what, err)
		}
		if err := checkFlags(what+", received", log.Inbound(), []bool{compressed}); err != nil {
			return err
		}
	}
	return nil
}

func clientCompressedStreaming(e env) error {
	first := &pb.StreamingInputCallRequest{
		ExpectCompressed: &pb.BoolValue{Value: true},
		Payload:          interop.ZeroPayload(27182),
	}
	second := &pb.StreamingInputCallRequest{
		ExpectCompressed: &pb.BoolValue{Value: false},
		Payload:          interop.ZeroPayload(45904),
	}

	// Probe: an uncompressed stream whose message claims to be compressed must be refused.
	probe, err := e.test.StreamingInputCall(e.ctx)
	if err != nil {
		return fmt.Errorf("probe: %w", err)
	}
	// The probe stream has no compressor, so a message prepared on it stays uncompressed
	// whichever stream later sends it.
	var plainSecond grpc.PreparedMsg
	if err := plainSecond.Encode(probe, second); err != nil {
		return fmt.Errorf("preparing the uncompressed message: %w", err)
	}
	if err := probe.Send(first); err != nil && err != io.EOF {
		return fmt.Errorf("probe send: %w", err)
	}
	_, err = probe.CloseAndRecv()
	if err := wantCode("probe (uncompressed, expect_compressed=true)", err, codes.InvalidArgument, nil); err != nil {
		return err
	}

	ctx, log := interop.WithCallLog(e.ctx)
	stream, err := e.test.StreamingInputCall(ctx, grpc.UseCompressor(gzip.Name))
	if err != nil {
		return fmt.Errorf("StreamingInputCall: %w", err)
	}
	if err := stream.Send(first); err != nil {
		return fmt.Errorf("send compressed: %w", err)
	}
	if err := stream.SendMsg(&plainSecond); err != nil {
		return fmt.Errorf("send uncompressed: %w", err)
	}
	resp, err := stream.CloseAndRecv()
	if err != nil {
		return fmt.Errorf("CloseAndRecv: %w", err)
	}
	if got := resp.GetAggregatedPayloadSize(); got != 73086 {
		return fmt.Errorf("aggregated_payload_size %d, want 73086", got)
	}
	return checkFlags("sent", log.Outbound(), []bool{true, false})
}

func serverCompressedStreaming(e env) error {
	req := &pb.StreamingOutputCallRequest{
		ResponseType: pb.PayloadType_COMPRESSABLE,
		ResponseParameters: []*pb.ResponseParameters{
			{Size: 31415, Compressed: &pb.BoolValue{Value: true}},
			{Size: 92653, Compressed: &pb.BoolValue{Value: false}},
		},
	}
	ctx, log := interop.WithCallLog(acceptGzip(e.ctx))
	stream, err := e.test.StreamingOutputCall(ctx, req)
	if err != nil {
		return fmt.Errorf("StreamingOutputCall: %w", err)
	}
	if err := recvSizes(stream.Recv, []int{31415, 92653}); err != nil {
		return err
	}
	return checkFlags("received", log.Inbound(), []bool{true, false})
}
