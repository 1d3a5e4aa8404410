// Command server is bare-grpc's grpc-go interop server: grpc.testing.TestService as
// interop-test-descriptions.md ("Server" section) describes it, for bare-grpc's Rust
// interop client to run the official cases against a real grpc-go 1.33 peer.
//
//	server --port N [--use_tls=false] [--stop_on_stdin_eof]
//	server --port N --use_tls --tls_cert_file=F --tls_key_file=F [--tls_client_ca_file=F]
//
// With --use_tls it serves with credentials.NewServerTLSFromFile, or, with
// --tls_client_ca_file, requires and verifies a client certificate (mutual TLS).
//
// Prints "listening on <port>" once it accepts calls (with --port 0 it picks a free port
// and prints that one). Plaintext HTTP/2 on 127.0.0.1 only; --use_tls=true is refused.
//
// Features served: EmptyCall, UnaryCall (response_size, response_type, response_status,
// response_compressed, expect_compressed), StreamingOutputCall and FullDuplexCall
// (response_parameters size, interval_us, compressed; response_status), StreamingInputCall
// (aggregated size, expect_compressed), HalfDuplexCall, Echo Metadata
// (x-grpc-test-echo-initial into headers, x-grpc-test-echo-trailing-bin into trailers).
// UnimplementedCall and any other method answer UNIMPLEMENTED. Not served: the auth echo
// fields (fill_username, fill_oauth_scope: there is no auth) and CacheableUnaryCall.
//
// Every response header block carries `grpc-encoding: gzip`, whatever the request's
// grpc-accept-encoding, because that is how grpc-go 1.33 can compress single messages
// (compress.go); messages not asked to be compressed go out with the flag clear.
package main

import (
	"bufio"
	"context"
	"crypto/tls"
	"crypto/x509"
	"flag"
	"fmt"
	"io"
	"io/ioutil"
	"net"
	"os"
	"strconv"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials"
	_ "google.golang.org/grpc/encoding/gzip" // decompresses gzip requests
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"

	pb "generated/grpc_testing"

	"bare-grpc-interop/interop"
)

const (
	echoInitialKey  = "x-grpc-test-echo-initial"
	echoTrailingKey = "x-grpc-test-echo-trailing-bin"
)

func main() {
	port := flag.Int("port", 0, "TCP port on 127.0.0.1 (0 picks a free one)")
	useTLS := flag.Bool("use_tls", false, "serve over TLS")
	certFile := flag.String("tls_cert_file", "", "PEM server certificate (with --use_tls)")
	keyFile := flag.String("tls_key_file", "", "PEM server private key (with --use_tls)")
	clientCA := flag.String("tls_client_ca_file", "", "require client certificates signed by this CA")
	stopOnEOF := flag.Bool("stop_on_stdin_eof", false,
		"exit when stdin reaches end of file, so the server never outlives the process that started it")
	unixPath := flag.String("unix", "", "listen on this Unix domain socket path instead of TCP")
	flag.Parse()

	network, address := "tcp", net.JoinHostPort("127.0.0.1", strconv.Itoa(*port))
	if *unixPath != "" {
		network, address = "unix", *unixPath
	}
	lis, err := net.Listen(network, address)
	if err != nil {
		fmt.Fprintf(os.Stderr, "server: listen: %v\n", err)
		os.Exit(1)
	}
	options := []grpc.ServerOption{}
	if *useTLS {
		options = append(options, grpc.Creds(serverTLS(*certFile, *keyFile, *clientCA)))
	}
	srv := grpc.NewServer(append(options,
		grpc.CustomCodec(markingCodec{}),
		grpc.RPCCompressor(selectiveGzip{}),
		grpc.StatsHandler(interop.StatsHandler{TagCalls: true}),
	)...)
	pb.RegisterTestServiceServer(srv, &testService{})

	if *stopOnEOF {
		go func() {
			_, _ = io.Copy(io.Discard, bufio.NewReader(os.Stdin))
			srv.Stop()
		}()
	}

	if tcp, ok := lis.Addr().(*net.TCPAddr); ok {
		fmt.Printf("listening on %d\n", tcp.Port)
	} else {
		fmt.Printf("listening on %s\n", lis.Addr())
	}
	if err := srv.Serve(lis); err != nil {
		fmt.Fprintf(os.Stderr, "server: serve: %v\n", err)
		os.Exit(1)
	}
}

// serverTLS builds the credentials of --use_tls: NewServerTLSFromFile, or a tls.Config that
// requires a client certificate from --tls_client_ca_file.
func serverTLS(certFile, keyFile, clientCA string) credentials.TransportCredentials {
	if clientCA == "" {
		creds, err := credentials.NewServerTLSFromFile(certFile, keyFile)
		if err != nil {
			fmt.Fprintf(os.Stderr, "server: --tls_cert_file/--tls_key_file: %v\n", err)
			os.Exit(2)
		}
		return creds
	}
	pair, err := tls.LoadX509KeyPair(certFile, keyFile)
	if err != nil {
		fmt.Fprintf(os.Stderr, "server: --tls_cert_file/--tls_key_file: %v\n", err)
		os.Exit(2)
	}
	pem, err := ioutil.ReadFile(clientCA)
	if err != nil {
		fmt.Fprintf(os.Stderr, "server: --tls_client_ca_file: %v\n", err)
		os.Exit(2)
	}
	pool := x509.NewCertPool()
	pool.AppendCertsFromPEM(pem)
	return credentials.NewTLS(&tls.Config{
		Certificates: []tls.Certificate{pair},
		ClientAuth:   tls.RequireAndVerifyClientCert,
		ClientCAs:    pool,
	})
}

type testService struct {
	pb.UnimplementedTestServiceServer
}

func (*testService) EmptyCall(ctx context.Context, _ *pb.Empty) (*pb.Empty, error) {
	if err := echoMetadata(ctx, func(md metadata.MD) error { return grpc.SetHeader(ctx, md) },
		func(md metadata.MD) error { return grpc.SetTrailer(ctx, md) }); err != nil {
		return nil, err
	}
	return &pb.Empty{}, nil
}

func (*testService) UnaryCall(ctx context.Context, req *pb.SimpleRequest) (*pb.SimpleResponse, error) {
	if err := echoMetadata(ctx, func(md metadata.MD) error { return grpc.SetHeader(ctx, md) },
		func(md metadata.MD) error { return grpc.SetTrailer(ctx, md) }); err != nil {
		return nil, err
	}
	if err := checkExpectCompressed(ctx, req.GetExpectCompressed()); err != nil {
		return nil, err
	}
	if err := echoStatus(req.GetResponseStatus()); err != nil {
		return nil, err
	}
	payload, err := newPayload(req.GetResponseType(), req.GetResponseSize())
	if err != nil {
		return nil, err
	}
	resp := &pb.SimpleResponse{Payload: payload}
	if req.GetResponseCompressed().GetValue() {
		compressResponse(resp)
	}
	return resp, nil
}

func (*testService) StreamingOutputCall(req *pb.StreamingOutputCallRequest, stream pb.TestService_StreamingOutputCallServer) error {
	if err := echoStreamMetadata(stream); err != nil {
		return err
	}
	if err := echoStatus(req.GetResponseStatus()); err != nil {
		return err
	}
	return respond(stream.Context(), stream.Send, req)
}

func (*testService) StreamingInputCall(stream pb.TestService_StreamingInputCallServer) error {
	if err := echoStreamMetadata(stream); err != nil {
		return err
	}
	total := 0
	for {
		req, err := stream.Recv()
		if err == io.EOF {
			return stream.SendAndClose(&pb.StreamingInputCallResponse{AggregatedPayloadSize: int32(total)})
		}
		if err != nil {
			return err
		}
		if err := checkExpectCompressed(stream.Context(), req.GetExpectCompressed()); err != nil {
			return err
		}
		total += len(req.GetPayload().GetBody())
	}
}

func (*testService) FullDuplexCall(stream pb.TestService_FullDuplexCallServer) error {
	if err := echoStreamMetadata(stream); err != nil {
		return err
	}
	for {
		req, err := stream.Recv()
		if err == io.EOF {
			return nil
		}
		if err != nil {
			return err
		}
		if err := echoStatus(req.GetResponseStatus()); err != nil {
			return err
		}
		if err := respond(stream.Context(), stream.Send, req); err != nil {
			return err
		}
	}
}

func (*testService) HalfDuplexCall(stream pb.TestService_HalfDuplexCallServer) error {
	if err := echoStreamMetadata(stream); err != nil {
		return err
	}
	var reqs []*pb.StreamingOutputCallRequest
	for {
		req, err := stream.Recv()
		if err == io.EOF {
			break
		}
		if err != nil {
			return err
		}
		reqs = append(reqs, req)
	}
	for _, req := range reqs {
		if err := echoStatus(req.GetResponseStatus()); err != nil {
			return err
		}
		if err := respond(stream.Context(), stream.Send, req); err != nil {
			return err
		}
	}
	return nil
}

func (*testService) UnimplementedCall(context.Context, *pb.Empty) (*pb.Empty, error) {
	return nil, status.Error(codes.Unimplemented, "grpc.testing.TestService/UnimplementedCall is never implemented")
}

// respond sends one response per ResponseParameters, in order, each after waiting its
// interval_us (measured from the previous response, as "Observe
// ResponseParameters.interval_us" says).
func respond(ctx context.Context, send func(*pb.StreamingOutputCallResponse) error, req *pb.StreamingOutputCallRequest) error {
	for _, p := range req.GetResponseParameters() {
		if us := p.GetIntervalUs(); us > 0 {
			t := time.NewTimer(time.Duration(us) * time.Microsecond)
			select {
			case <-ctx.Done():
				t.Stop()
				return status.FromContextError(ctx.Err()).Err()
			case <-t.C:
			}
		}
		payload, err := newPayload(req.GetResponseType(), p.GetSize())
		if err != nil {
			return err
		}
		resp := &pb.StreamingOutputCallResponse{Payload: payload}
		if p.GetCompressed().GetValue() {
			compressResponse(resp)
		}
		if err := send(resp); err != nil {
			return err
		}
	}
	return nil
}

// newPayload builds a response payload of size zero bytes. COMPRESSABLE is the only
// PayloadType; anything else is INVALID_ARGUMENT, as the UnaryCall feature asks.
func newPayload(t pb.PayloadType, size int32) (*pb.Payload, error) {
	if t != pb.PayloadType_COMPRESSABLE {
		return nil, status.Errorf(codes.InvalidArgument, "unsupported response_type %v", t)
	}
	if size < 0 {
		return nil, status.Errorf(codes.InvalidArgument, "negative response size %d", size)
	}
	return interop.ZeroPayload(int(size)), nil
}

// echoStatus turns a request's response_status into the call's status ("Echo Status").
func echoStatus(s *pb.EchoStatus) error {
	if s == nil || s.GetCode() == 0 {
		return nil
	}
	return status.Error(codes.Code(s.GetCode()), s.GetMessage())
}

// checkExpectCompressed enforces CompressedRequest on the message just received: when
// expect_compressed is present, its value must match the message's compressed flag,
// otherwise INVALID_ARGUMENT. Absent means no expectation (the field is "nullable").
func checkExpectCompressed(ctx context.Context, want *pb.BoolValue) error {
	if want == nil {
		return nil
	}
	log := interop.CallLogFrom(ctx)
	in := log.Inbound()
	if len(in) == 0 {
		return status.Error(codes.Internal, "server: no record of the request message")
	}
	got := in[len(in)-1].Compressed()
	switch {
	case want.GetValue() && !got:
		return status.Errorf(codes.InvalidArgument,
			"expect_compressed is true but the request message was not compressed (grpc-encoding %q)",
			log.RecvEncoding())
	case !want.GetValue() && got:
		return status.Error(codes.InvalidArgument,
			"expect_compressed is false but the request message was compressed")
	}
	return nil
}

// echoMetadata copies the Echo Metadata keys of the request into the response headers
// and trailers.
func echoMetadata(ctx context.Context, setHeader, setTrailer func(metadata.MD) error) error {
	md, _ := metadata.FromIncomingContext(ctx)
	if v := md.Get(echoInitialKey); len(v) > 0 {
		if err := setHeader(metadata.MD{echoInitialKey: v}); err != nil {
			return err
		}
	}
	if v := md.Get(echoTrailingKey); len(v) > 0 {
		if err := setTrailer(metadata.MD{echoTrailingKey: v}); err != nil {
			return err
		}
	}
	return nil
}

func echoStreamMetadata(stream grpc.ServerStream) error {
	return echoMetadata(stream.Context(), stream.SetHeader, func(md metadata.MD) error {
		stream.SetTrailer(md)
		return nil
	})
}
