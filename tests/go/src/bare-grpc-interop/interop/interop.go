// Package interop holds what bare-grpc's grpc-go interop client and server share: the
// zero-filled payloads of interop-test-descriptions.md and a stats.Handler that tells, for
// each call, which messages crossed the wire with the compressed flag set.
//
// Why a stats handler: the compression cases (client_compressed_*, server_compressed_*) ask
// about the per-message compressed flag (PROTOCOL-HTTP2, "Compressed-Flag"), which grpc-go
// 1.33 never shows to application code. Its stats events do show, for every message, the
// bytes on the wire (WireLength, prefix included) and the bytes after decompression
// (Length). A message sent with the flag clear carries exactly its serialized bytes, so
// WireLength == Length + 5; with the flag set it carries the gzip stream instead, whose
// length differs from the input for every payload these tests use (thousands of zero bytes
// shrink to a few dozen). The check is exact for those payloads, not for arbitrary data.
package interop

import (
	"bytes"
	"context"
	"fmt"
	"sync"

	"google.golang.org/grpc/stats"

	pb "generated/grpc_testing"
)

// PrefixLen is the gRPC message prefix: 1 byte compressed flag, 4 bytes big-endian length.
const PrefixLen = 5

// ZeroPayload returns a COMPRESSABLE payload whose body is n zero bytes.
func ZeroPayload(n int) *pb.Payload {
	return &pb.Payload{Type: pb.PayloadType_COMPRESSABLE, Body: make([]byte, n)}
}

// CheckZeroPayload returns an error unless p holds exactly want zero bytes.
func CheckZeroPayload(p *pb.Payload, want int) error {
	if p == nil {
		if want == 0 {
			return nil
		}
		return fmt.Errorf("payload missing, want %d bytes", want)
	}
	if len(p.Body) != want {
		return fmt.Errorf("payload body is %d bytes, want %d", len(p.Body), want)
	}
	if !bytes.Equal(p.Body, make([]byte, want)) {
		return fmt.Errorf("payload body of %d bytes is not all zeros", want)
	}
	return nil
}

// Message is one message of a call as the stats handler saw it.
type Message struct {
	// Length is the serialized message size before compression.
	Length int
	// WireLength is what crossed the wire for it, 5-byte prefix included.
	WireLength int
}

// Compressed reports whether the message went over the wire compressed (see package doc).
func (m Message) Compressed() bool { return m.WireLength != m.Length+PrefixLen }

// CallLog collects, for one call, the grpc-encoding received and every message each way.
type CallLog struct {
	mu           sync.Mutex
	recvEncoding string
	inbound      []Message
	outbound     []Message
}

// RecvEncoding is the grpc-encoding header the peer sent ("" when absent).
func (l *CallLog) RecvEncoding() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.recvEncoding
}

// Inbound returns the messages received so far, in order.
func (l *CallLog) Inbound() []Message {
	l.mu.Lock()
	defer l.mu.Unlock()
	return append([]Message(nil), l.inbound...)
}

// Outbound returns the messages sent so far, in order.
func (l *CallLog) Outbound() []Message {
	l.mu.Lock()
	defer l.mu.Unlock()
	return append([]Message(nil), l.outbound...)
}

type callLogKey struct{}

// WithCallLog returns a context carrying a fresh CallLog; a call made with (a context
// derived from) it is recorded there by a StatsHandler.
func WithCallLog(ctx context.Context) (context.Context, *CallLog) {
	l := &CallLog{}
	return context.WithValue(ctx, callLogKey{}, l), l
}

// CallLogFrom returns the CallLog in ctx, or nil.
func CallLogFrom(ctx context.Context) *CallLog {
	l, _ := ctx.Value(callLogKey{}).(*CallLog)
	return l
}

// StatsHandler records calls into their CallLog. On the client the caller attaches the
// log (WithCallLog) before the call; on the server (TagCalls set) every call gets one.
type StatsHandler struct {
	// TagCalls attaches a fresh CallLog to every call's context (server side).
	TagCalls bool
}

// TagRPC attaches a CallLog when TagCalls is set.
func (h StatsHandler) TagRPC(ctx context.Context, _ *stats.RPCTagInfo) context.Context {
	if h.TagCalls {
		ctx, _ = WithCallLog(ctx)
	}
	return ctx
}

// HandleRPC records headers and payloads of calls that carry a CallLog.
func (StatsHandler) HandleRPC(ctx context.Context, s stats.RPCStats) {
	l := CallLogFrom(ctx)
	if l == nil {
		return
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	switch ev := s.(type) {
	case *stats.InHeader:
		l.recvEncoding = ev.Compression
	case *stats.InPayload:
		l.inbound = append(l.inbound, Message{Length: ev.Length, WireLength: ev.WireLength})
	case *stats.OutPayload:
		l.outbound = append(l.outbound, Message{Length: ev.Length, WireLength: ev.WireLength})
	}
}

// TagConn leaves connection contexts alone.
func (StatsHandler) TagConn(ctx context.Context, _ *stats.ConnTagInfo) context.Context {
	return ctx
}

// HandleConn ignores connection events.
func (StatsHandler) HandleConn(context.Context, stats.ConnStats) {}
