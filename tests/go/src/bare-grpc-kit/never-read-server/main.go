// Command never-read-server is the grpc-go peer of tests/slow_readers.rs: a server that never
// reads an upload, so a client's send stall timeout can be proven against grpc-go's flow
// control (issue 15 item 3, the client side).
//
//	never-read-server --port 0 --stop_on_stdin_eof
//
// Every method is served by one handler (grpc.UnknownServiceHandler, so no generated code):
//
//	/test.Slow/Done   returns OK at once without reading (a call that shows the client's
//	                  connection still serves)
//	any other path    never reads the request stream; waits until the client resets or the
//	                  deadline passes, then returns the context's error
//
// It prints "listening on <port>" and stops when its stdin closes.
package main

import (
	"flag"
	"fmt"
	"io"
	"io/ioutil"
	"net"
	"os"

	"google.golang.org/grpc"
	"google.golang.org/grpc/status"
)

func main() {
	port := flag.Int("port", 0, "TCP port on 127.0.0.1 (0 picks a free one)")
	stopOnEOF := flag.Bool("stop_on_stdin_eof", false, "stop when stdin closes")
	flag.Parse()
	lis, err := net.Listen("tcp", fmt.Sprintf("127.0.0.1:%d", *port))
	if err != nil {
		fmt.Fprintf(os.Stderr, "listen: %v\n", err)
		os.Exit(1)
	}
	server := grpc.NewServer(grpc.UnknownServiceHandler(handle))
	fmt.Printf("listening on %d\n", lis.Addr().(*net.TCPAddr).Port)
	if *stopOnEOF {
		go func() {
			_, _ = io.Copy(ioutil.Discard, os.Stdin)
			server.Stop()
		}()
	}
	if err := server.Serve(lis); err != nil {
		fmt.Fprintf(os.Stderr, "serve: %v\n", err)
	}
}

// handle serves every call without ever calling RecvMsg: grpc-go then never gives the
// stream's flow-control window back, and the client's upload stops at the window.
func handle(_ interface{}, stream grpc.ServerStream) error {
	method, _ := grpc.MethodFromServerStream(stream)
	if method == "/test.Slow/Done" {
		return nil
	}
	<-stream.Context().Done()
	return status.FromContextError(stream.Context().Err()).Err()
}
