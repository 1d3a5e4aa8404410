// Command reflection-client asks a server about itself through grpc-go's reflection client
// stubs (google.golang.org/grpc/reflection/grpc_reflection_v1alpha, Debian's grpc-go 1.33),
// then checks that the descriptors it got back build a complete, linked descriptor graph
// (protodesc.NewFiles, google.golang.org/protobuf) — what grpcurl needs to call a method
// with no .proto at hand. For tests/reflection.rs.
//
//	reflection-client --addr HOST:PORT [--symbol NAME]... [--file NAME]...
//
// Output, one fact per line, in this order:
//
//	service <name>                                  each name list_services gave
//	method <service>/<method> <in> <out> <kind>     each method of each service, read from the
//	                                                linked descriptors (kind: unary,
//	                                                server_stream, client_stream, bidi_stream)
//	symbol <name> <file>|error <CODE>               each --symbol: file_containing_symbol
//	file <name> <count>|error <CODE>                each --file: file_by_filename, files sent
//	empty error <CODE>                              a request with no message_request set
//	done                                            the stream closed cleanly
//
// Debian's grpc_reflection_v1alpha is generated for the older github.com/golang/protobuf API
// (hence protov1 for its messages); the descriptors are read with google.golang.org/protobuf.
//
// Every request goes on one stream, so the error answers also show that the stream survives
// them. Any failure prints "fail: why" to stderr and exits 1.
package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"os"
	"sort"
	"strings"
	"time"

	protov1 "github.com/golang/protobuf/proto"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	rpb "google.golang.org/grpc/reflection/grpc_reflection_v1alpha"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/reflect/protodesc"
	"google.golang.org/protobuf/reflect/protoreflect"
	"google.golang.org/protobuf/types/descriptorpb"
)

type list []string

func (l *list) String() string     { return strings.Join(*l, ",") }
func (l *list) Set(v string) error { *l = append(*l, v); return nil }

func fail(format string, args ...interface{}) {
	fmt.Fprintf(os.Stderr, "fail: "+format+"\n", args...)
	os.Exit(1)
}

func main() {
	addr := flag.String("addr", "", "server address, host:port")
	var symbols, files list
	flag.Var(&symbols, "symbol", "a symbol to look up (repeatable)")
	flag.Var(&files, "file", "a file name to look up (repeatable)")
	flag.Parse()
	if *addr == "" {
		fail("--addr is required")
	}

	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	conn, err := grpc.DialContext(ctx, *addr, grpc.WithInsecure(), grpc.WithBlock())
	if err != nil {
		fail("connect: %v", err)
	}
	defer conn.Close()
	stream, err := rpb.NewServerReflectionClient(conn).ServerReflectionInfo(ctx)
	if err != nil {
		fail("open stream: %v", err)
	}
	ask := func(req *rpb.ServerReflectionRequest) *rpb.ServerReflectionResponse {
		req.Host = "localhost"
		if err := stream.Send(req); err != nil {
			fail("send: %v", err)
		}
		resp, err := stream.Recv()
		if err != nil {
			fail("recv: %v", err)
		}
		if !protov1.Equal(resp.GetOriginalRequest(), req) {
			fail("original_request %v is not the request %v", resp.GetOriginalRequest(), req)
		}
		return resp
	}

	// 1. list_services.
	listed := ask(&rpb.ServerReflectionRequest{
		MessageRequest: &rpb.ServerReflectionRequest_ListServices{ListServices: "*"},
	}).GetListServicesResponse()
	if listed == nil {
		fail("list_services got no ListServiceResponse")
	}
	var services []string
	for _, s := range listed.GetService() {
		services = append(services, s.GetName())
		fmt.Printf("service %s\n", s.GetName())
	}

	// 2. Each service's file and its imports; every file kept once, by name.
	byName := map[string]*descriptorpb.FileDescriptorProto{}
	for _, name := range services {
		resp := ask(&rpb.ServerReflectionRequest{
			MessageRequest: &rpb.ServerReflectionRequest_FileContainingSymbol{FileContainingSymbol: name},
		})
		fds := resp.GetFileDescriptorResponse().GetFileDescriptorProto()
		if len(fds) == 0 {
			fail("no descriptors for service %s: %v", name, resp.GetErrorResponse())
		}
		for i, raw := range fds {
			fd := &descriptorpb.FileDescriptorProto{}
			if err := proto.Unmarshal(raw, fd); err != nil {
				fail("descriptor %d for %s does not parse: %v", i, name, err)
			}
			byName[fd.GetName()] = fd
		}
	}

	// 3. Link them: every import and type reference must resolve.
	set := &descriptorpb.FileDescriptorSet{}
	for _, fd := range byName {
		set.File = append(set.File, fd)
	}
	registry, err := protodesc.NewFiles(set)
	if err != nil {
		fail("descriptors do not link: %v", err)
	}
	for _, name := range services {
		desc, err := registry.FindDescriptorByName(protoreflect.FullName(name))
		if err != nil {
			fail("service %s not in its own descriptors: %v", name, err)
		}
		sd, ok := desc.(protoreflect.ServiceDescriptor)
		if !ok {
			fail("%s is not a service", name)
		}
		var lines []string
		for i := 0; i < sd.Methods().Len(); i++ {
			m := sd.Methods().Get(i)
			lines = append(lines, fmt.Sprintf("method %s/%s %s %s %s", name, m.Name(),
				m.Input().FullName(), m.Output().FullName(), kind(m)))
		}
		sort.Strings(lines)
		for _, line := range lines {
			fmt.Println(line)
		}
	}

	// 4. Symbols and files the test asks about, answers or errors, on the same stream.
	for _, symbol := range symbols {
		resp := ask(&rpb.ServerReflectionRequest{
			MessageRequest: &rpb.ServerReflectionRequest_FileContainingSymbol{FileContainingSymbol: symbol},
		})
		if e := resp.GetErrorResponse(); e != nil {
			fmt.Printf("symbol %s error %s\n", symbol, codeName(e.GetErrorCode()))
			continue
		}
		fds := resp.GetFileDescriptorResponse().GetFileDescriptorProto()
		if len(fds) == 0 {
			fail("symbol %s: neither descriptors nor an error", symbol)
		}
		fd := &descriptorpb.FileDescriptorProto{}
		if err := proto.Unmarshal(fds[0], fd); err != nil {
			fail("symbol %s: descriptor does not parse: %v", symbol, err)
		}
		fmt.Printf("symbol %s %s\n", symbol, fd.GetName())
	}
	for _, file := range files {
		resp := ask(&rpb.ServerReflectionRequest{
			MessageRequest: &rpb.ServerReflectionRequest_FileByFilename{FileByFilename: file},
		})
		if e := resp.GetErrorResponse(); e != nil {
			fmt.Printf("file %s error %s\n", file, codeName(e.GetErrorCode()))
			continue
		}
		fds := resp.GetFileDescriptorResponse().GetFileDescriptorProto()
		fd := &descriptorpb.FileDescriptorProto{}
		if len(fds) == 0 || proto.Unmarshal(fds[0], fd) != nil || fd.GetName() != file {
			fail("file %s: the first descriptor is not that file", file)
		}
		fmt.Printf("file %s %d\n", file, len(fds))
	}

	// 5. A request with nothing in it.
	if e := ask(&rpb.ServerReflectionRequest{}).GetErrorResponse(); e != nil {
		fmt.Printf("empty error %s\n", codeName(e.GetErrorCode()))
	} else {
		fail("an empty request got no error response")
	}

	// 6. Half-close; the server ends the call with OK.
	if err := stream.CloseSend(); err != nil {
		fail("close send: %v", err)
	}
	if _, err := stream.Recv(); err != io.EOF {
		fail("after half-close: want end of stream, got %v", err)
	}
	fmt.Println("done")
}

func kind(m protoreflect.MethodDescriptor) string {
	switch {
	case m.IsStreamingClient() && m.IsStreamingServer():
		return "bidi_stream"
	case m.IsStreamingClient():
		return "client_stream"
	case m.IsStreamingServer():
		return "server_stream"
	default:
		return "unary"
	}
}

// codeName gives statuscodes.md's name for a status code number ("NOT_FOUND" for 5).
func codeName(code int32) string {
	camel := codes.Code(uint32(code)).String()
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
