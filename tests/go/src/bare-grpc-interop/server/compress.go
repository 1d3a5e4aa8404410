package main

// Per-message response compression on a grpc-go 1.33 server.
//
// The interop cases server_compressed_unary and server_compressed_streaming want the server
// to set or clear the compressed flag of each response message as the request asks
// (SimpleRequest.response_compressed, ResponseParameters.compressed). grpc-go 1.33 has no
// API for that: a server either compresses every response of a call (when the request came
// compressed, or when a server-wide legacy grpc.Compressor is installed) or none.
//
// How we get it anyway, with public API only:
//
//	handler                      codec (Marshal)                  legacy Compressor (Do)
//	compressResponse(resp) --->  resp marked? remember the    --> these bytes remembered?
//	                             first byte of its encoding        yes: write gzip
//	                                                               no:  write nothing
//
// grpc-go's rpc_util.go compress() hands the message bytes to Compressor.Do with an empty
// bytes.Buffer and returns that buffer's Bytes(); when Do writes nothing that is nil, and
// msgHeader() then sends the original bytes with the compressed flag clear. So every
// response header says `grpc-encoding: gzip` (set by grpc.RPCCompressor, PROTOCOL-HTTP2
// allows it: the flag decides per message), and only marked messages are gzipped.
// This leans on grpc-go 1.33's internals, pinned by Debian's golang-google-grpc-dev; the
// interop client's flag checks (see package interop) catch it if that ever changes.
//
// Both tables are keyed by identity (the response pointer, then the address of the first
// byte of its encoding), so concurrent calls never see each other's marks, and entries are
// removed when used.

import (
	"compress/gzip"
	"fmt"
	"io"
	"sync"

	"google.golang.org/protobuf/proto"
)

var (
	markedResponses sync.Map // proto.Message -> struct{}: compress this response
	markedEncodings sync.Map // *byte -> struct{}: first byte of a marked response's encoding
)

// compressResponse asks for msg to go out with the compressed flag set.
func compressResponse(msg proto.Message) { markedResponses.Store(msg, struct{}{}) }

// markingCodec is the proto codec, plus passing each response's mark on to its bytes.
type markingCodec struct{}

func (markingCodec) Marshal(v interface{}) ([]byte, error) {
	msg, ok := v.(proto.Message)
	if !ok {
		return nil, fmt.Errorf("markingCodec: %T is not a proto.Message", v)
	}
	b, err := proto.Marshal(msg)
	if err != nil {
		return nil, err
	}
	if _, marked := markedResponses.LoadAndDelete(v); marked && len(b) > 0 {
		markedEncodings.Store(&b[0], struct{}{})
	}
	return b, nil
}

func (markingCodec) Unmarshal(data []byte, v interface{}) error {
	msg, ok := v.(proto.Message)
	if !ok {
		return fmt.Errorf("markingCodec: %T is not a proto.Message", v)
	}
	return proto.Unmarshal(data, msg)
}

func (markingCodec) String() string { return "proto" }

// selectiveGzip is the server-wide legacy grpc.Compressor: gzip for marked encodings,
// nothing at all (so: sent uncompressed) for the rest.
type selectiveGzip struct{}

func (selectiveGzip) Do(w io.Writer, p []byte) error {
	if len(p) == 0 {
		return nil
	}
	if _, marked := markedEncodings.LoadAndDelete(&p[0]); !marked {
		return nil
	}
	z := gzip.NewWriter(w)
	if _, err := z.Write(p); err != nil {
		return err
	}
	return z.Close()
}

func (selectiveGzip) Type() string { return "gzip" }
