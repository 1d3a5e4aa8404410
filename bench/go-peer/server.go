// Command go-server is grpc-go's side of the benchmark (bench/run, docs/performance.md):
// Greeter/SayHello, Stream/Pump, Collect/Drain, Echo/PingPong and Echo/Echo on loopback h2c.
//
//	go-server --port N --threads T
//
// --threads sets GOMAXPROCS, the Go counterpart of a tokio runtime's worker count.
// It builds in GOPATH mode against Debian's golang-google-grpc-dev; bench/build-go.sh
// generates the benchpeer/helloworld and benchpeer/bench packages with protoc first.
package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"log"
	"net"
	"runtime"

	"benchpeer/bench"
	"benchpeer/helloworld"

	"google.golang.org/grpc"
)

type greeter struct {
	helloworld.UnimplementedGreeterServer
}

func (greeter) SayHello(_ context.Context, in *helloworld.HelloRequest) (*helloworld.HelloReply, error) {
	return &helloworld.HelloReply{Message: "Hello " + in.GetName()}, nil
}

type pump struct {
	bench.UnimplementedStreamServer
}

func (pump) Pump(in *bench.PumpRequest, out bench.Stream_PumpServer) error {
	data := make([]byte, in.GetSize())
	for i := range data {
		data[i] = 'x'
	}
	chunk := &bench.Chunk{Data: data}
	for i := uint32(0); i < in.GetCount(); i++ {
		if err := out.Send(chunk); err != nil {
			return err
		}
	}
	return nil
}

type collect struct {
	bench.UnimplementedCollectServer
}

func (collect) Drain(in bench.Collect_DrainServer) error {
	summary := &bench.Summary{}
	for {
		chunk, err := in.Recv()
		if err == io.EOF {
			return in.SendAndClose(summary)
		}
		if err != nil {
			return err
		}
		summary.Count++
		summary.Bytes += uint64(len(chunk.GetData()))
	}
}

type echo struct {
	bench.UnimplementedEchoServer
}

func (echo) PingPong(stream bench.Echo_PingPongServer) error {
	for {
		chunk, err := stream.Recv()
		if err == io.EOF {
			return nil
		}
		if err != nil {
			return err
		}
		if err := stream.Send(chunk); err != nil {
			return err
		}
	}
}

func (echo) Echo(_ context.Context, in *bench.Chunk) (*bench.Chunk, error) {
	return in, nil
}

func main() {
	port := flag.Int("port", 50051, "TCP port on 127.0.0.1")
	threads := flag.Int("threads", 1, "GOMAXPROCS")
	flag.Parse()
	runtime.GOMAXPROCS(*threads)
	listener, err := net.Listen("tcp", fmt.Sprintf("127.0.0.1:%d", *port))
	if err != nil {
		log.Fatal(err)
	}
	server := grpc.NewServer()
	helloworld.RegisterGreeterServer(server, greeter{})
	bench.RegisterStreamServer(server, pump{})
	bench.RegisterCollectServer(server, collect{})
	bench.RegisterEchoServer(server, echo{})
	log.Fatal(server.Serve(listener))
}
