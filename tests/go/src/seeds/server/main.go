// Command server is a grpc-go 1.33 server for the seeds' ecommerce.ProductInfo and
// ecommerce.OrderManagement, with the same behaviour as bare-grpc's examples/seeds/ (ids,
// sample orders, status codes and messages, shipments of three), so bare-grpc's Rust clients
// can be run against a real grpc-go peer and must see exactly what they see from ours.
//
//	server [--port N] [--stop_on_stdin_eof]
//
// Prints "listening on <port>" once it accepts calls (--port 0 picks a free port). Plaintext
// HTTP/2 on 127.0.0.1 only.
package main

import (
	"bufio"
	"context"
	"flag"
	"fmt"
	"io"
	"net"
	"os"
	"sort"
	"strconv"
	"strings"
	"sync"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/wrapperspb"

	pb "generated/ecommerce"
)

// shipmentSize is how many orders fill a shipment (examples/seeds/order_management.rs).
const shipmentSize = 3

// maxBatch bounds the orders or ids one streaming call may send.
const maxBatch = 10000

type productInfo struct {
	pb.UnimplementedProductInfoServer
	mu       sync.Mutex
	lastID   uint64
	products map[string]*pb.Product
}

func (s *productInfo) AddProduct(ctx context.Context, in *pb.Product) (*pb.ProductID, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.lastID++
	p := proto.Clone(in).(*pb.Product)
	p.Id = strconv.FormatUint(s.lastID, 10)
	s.products[p.Id] = p
	return &pb.ProductID{Value: p.Id}, nil
}

func (s *productInfo) GetProduct(ctx context.Context, in *pb.ProductID) (*pb.Product, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if p, ok := s.products[in.Value]; ok {
		return p, nil
	}
	return nil, status.Errorf(codes.NotFound, "no product with id %q", in.Value)
}

type orderManagement struct {
	pb.UnimplementedOrderManagementServer
	mu           sync.Mutex
	lastID       uint64
	orders       map[string]*pb.Order
	lastShipment uint64
}

func sampleOrders() []*pb.Order {
	return []*pb.Order{
		{Id: "102", Items: []string{"Google Pixel 3A", "Mac Book Pro"}, Destination: "Mountain View, CA", Price: 1800},
		{Id: "103", Items: []string{"Apple Watch S4"}, Destination: "San Jose, CA", Price: 400},
		{Id: "104", Items: []string{"Google Home Mini", "Google Nest Hub"}, Destination: "Mountain View, CA", Price: 400},
		{Id: "105", Items: []string{"Amazon Echo"}, Destination: "San Jose, CA", Price: 30},
		{Id: "106", Items: []string{"Amazon Echo", "Apple iPhone XS"}, Destination: "Mountain View, CA", Price: 300},
	}
}

// noteID keeps fresh ids above every numeric id stored. Called with mu held.
func (s *orderManagement) noteID(id string) {
	if n, err := strconv.ParseUint(id, 10, 64); err == nil && n > s.lastID {
		s.lastID = n
	}
}

func notFound(id string) error { return status.Errorf(codes.NotFound, "no order with id %q", id) }

func (s *orderManagement) AddOrder(ctx context.Context, in *pb.Order) (*wrapperspb.StringValue, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	o := proto.Clone(in).(*pb.Order)
	if o.Id == "" {
		for {
			s.lastID++
			o.Id = strconv.FormatUint(s.lastID, 10)
			if _, taken := s.orders[o.Id]; !taken {
				break
			}
		}
	} else if _, exists := s.orders[o.Id]; exists {
		return nil, status.Errorf(codes.AlreadyExists, "order %q exists; updateOrders replaces orders", o.Id)
	}
	s.noteID(o.Id)
	s.orders[o.Id] = o
	return wrapperspb.String(o.Id), nil
}

func (s *orderManagement) GetOrder(ctx context.Context, in *wrapperspb.StringValue) (*pb.Order, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if o, ok := s.orders[in.Value]; ok {
		return o, nil
	}
	return nil, notFound(in.Value)
}

func (s *orderManagement) SearchOrders(in *wrapperspb.StringValue, stream pb.OrderManagement_SearchOrdersServer) error {
	s.mu.Lock()
	ids := make([]string, 0, len(s.orders))
	for id := range s.orders {
		ids = append(ids, id)
	}
	sort.Strings(ids)
	var matches []*pb.Order
	for _, id := range ids {
		for _, item := range s.orders[id].Items {
			if strings.Contains(item, in.Value) {
				matches = append(matches, s.orders[id])
				break
			}
		}
	}
	s.mu.Unlock()
	for _, o := range matches {
		if err := stream.Send(o); err != nil {
			return err
		}
	}
	return nil
}

func (s *orderManagement) UpdateOrders(stream pb.OrderManagement_UpdateOrdersServer) error {
	var updates []*pb.Order
	for {
		o, err := stream.Recv()
		if err == io.EOF {
			break
		}
		if err != nil {
			return err
		}
		if len(updates) == maxBatch {
			return status.Errorf(codes.ResourceExhausted, "more than %d orders in one call", maxBatch)
		}
		updates = append(updates, o)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	ids := make([]string, 0, len(updates))
	for _, o := range updates {
		if _, ok := s.orders[o.Id]; !ok {
			return notFound(o.Id)
		}
		ids = append(ids, o.Id)
	}
	for _, o := range updates {
		s.orders[o.Id] = o
	}
	return stream.SendAndClose(wrapperspb.String(strings.Join(ids, ", ")))
}

func (s *orderManagement) ProcessOrders(stream pb.OrderManagement_ProcessOrdersServer) error {
	type open struct {
		destination string
		shipment    *pb.CombinedShipment
	}
	var pending []*open
	seen := map[string]bool{}
	for {
		id, err := stream.Recv()
		if err == io.EOF {
			break
		}
		if err != nil {
			return err
		}
		if len(seen) == maxBatch {
			return status.Errorf(codes.ResourceExhausted, "more than %d order ids in one call", maxBatch)
		}
		if seen[id.Value] {
			continue
		}
		seen[id.Value] = true
		s.mu.Lock()
		o, ok := s.orders[id.Value]
		if ok {
			o = proto.Clone(o).(*pb.Order)
		}
		s.mu.Unlock()
		if !ok {
			return notFound(id.Value)
		}
		at := -1
		for i, p := range pending {
			if p.destination == o.Destination {
				at = i
			}
		}
		if at < 0 {
			s.mu.Lock()
			s.lastShipment++
			n := s.lastShipment
			s.mu.Unlock()
			pending = append(pending, &open{o.Destination, &pb.CombinedShipment{
				Id: fmt.Sprintf("shipment-%d to %s", n, o.Destination)}})
			at = len(pending) - 1
		}
		p := pending[at]
		p.shipment.OrdersList = append(p.shipment.OrdersList, o)
		if len(p.shipment.OrdersList) == shipmentSize {
			pending = append(pending[:at], pending[at+1:]...)
			p.shipment.Status = "full"
			if err := stream.Send(p.shipment); err != nil {
				return err
			}
		}
	}
	for _, p := range pending {
		p.shipment.Status = "remainder"
		if err := stream.Send(p.shipment); err != nil {
			return err
		}
	}
	return nil
}

func main() {
	port := flag.Int("port", 0, "TCP port on 127.0.0.1 (0 picks a free one)")
	stopOnEOF := flag.Bool("stop_on_stdin_eof", false,
		"exit when stdin reaches end of file, so the server never outlives the process that started it")
	flag.Parse()

	lis, err := net.Listen("tcp", fmt.Sprintf("127.0.0.1:%d", *port))
	if err != nil {
		fmt.Fprintf(os.Stderr, "server: %v\n", err)
		os.Exit(1)
	}
	orders := &orderManagement{orders: map[string]*pb.Order{}}
	for _, o := range sampleOrders() {
		orders.orders[o.Id] = o
		orders.noteID(o.Id)
	}
	s := grpc.NewServer()
	pb.RegisterProductInfoServer(s, &productInfo{products: map[string]*pb.Product{}})
	pb.RegisterOrderManagementServer(s, orders)
	if *stopOnEOF {
		go func() {
			_, _ = io.Copy(io.Discard, bufio.NewReader(os.Stdin))
			s.Stop()
			os.Exit(0)
		}()
	}
	fmt.Printf("listening on %d\n", lis.Addr().(*net.TCPAddr).Port)
	if err := s.Serve(lis); err != nil {
		fmt.Fprintf(os.Stderr, "server: %v\n", err)
		os.Exit(1)
	}
}
