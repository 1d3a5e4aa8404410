// Command client is a grpc-go 1.33 client for the seeds' ecommerce.ProductInfo and
// ecommerce.OrderManagement: it checks, against a freshly started server, the behaviour
// examples/seeds/ documents, with one check per rule.
//
//	client --server_addr HOST:PORT
//
// Prints "PASS <check>" or "FAIL <check>: <why>" per check and exits 1 if any failed. The
// server must be fresh (no products yet, the five sample orders 102..106 as they start).
package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"os"
	"sort"
	"strings"
	"sync"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/wrapperspb"

	pb "generated/ecommerce"
)

type checker struct {
	ctx    context.Context
	pi     pb.ProductInfoClient
	om     pb.OrderManagementClient
	failed bool
}

func (c *checker) run(name string, check func() error) {
	if err := check(); err != nil {
		c.failed = true
		fmt.Printf("FAIL %s: %v\n", name, err)
		return
	}
	fmt.Printf("PASS %s\n", name)
}

// wantStatus checks err is a status with the code and a message containing fragment.
func wantStatus(err error, code codes.Code, fragment string) error {
	st, _ := status.FromError(err)
	if err == nil || st.Code() != code || !strings.Contains(st.Message(), fragment) {
		return fmt.Errorf("want %v with %q in the message, got %v", code, fragment, err)
	}
	return nil
}

func (c *checker) productAddGet() error {
	in := &pb.Product{Name: "Apple iPhone 11", Description: "Meet Apple iPhone 11.", Price: 699}
	id, err := c.pi.AddProduct(c.ctx, in)
	if err != nil {
		return err
	}
	if id.Value == "" {
		return fmt.Errorf("empty id")
	}
	got, err := c.pi.GetProduct(c.ctx, id)
	if err != nil {
		return err
	}
	want := proto.Clone(in).(*pb.Product)
	want.Id = id.Value
	if !proto.Equal(got, want) {
		return fmt.Errorf("got %v, want %v", got, want)
	}
	return nil
}

func (c *checker) productNotFound() error {
	_, err := c.pi.GetProduct(c.ctx, &pb.ProductID{Value: "no-such-id"})
	return wantStatus(err, codes.NotFound, `"no-such-id"`)
}

func (c *checker) productConcurrentAdds() error {
	const n = 32
	ids := make([]string, n)
	errs := make([]error, n)
	var wg sync.WaitGroup
	for i := 0; i < n; i++ {
		wg.Add(1)
		go func(i int) {
			defer wg.Done()
			id, err := c.pi.AddProduct(c.ctx, &pb.Product{Name: fmt.Sprintf("p%d", i)})
			if err == nil {
				ids[i] = id.Value
			}
			errs[i] = err
		}(i)
	}
	wg.Wait()
	seen := map[string]bool{}
	for i, id := range ids {
		if errs[i] != nil {
			return errs[i]
		}
		if seen[id] {
			return fmt.Errorf("id %q handed out twice", id)
		}
		seen[id] = true
		got, err := c.pi.GetProduct(c.ctx, &pb.ProductID{Value: id})
		if err != nil {
			return err
		}
		if got.Name != fmt.Sprintf("p%d", i) {
			return fmt.Errorf("id %q holds %q, want p%d", id, got.Name, i)
		}
	}
	return nil
}

func (c *checker) orderAddGet() error {
	in := &pb.Order{Items: []string{"Amazon Echo Dot"}, Destination: "Seattle, WA", Price: 49.99}
	id, err := c.om.AddOrder(c.ctx, in)
	if err != nil {
		return err
	}
	got, err := c.om.GetOrder(c.ctx, id)
	if err != nil {
		return err
	}
	if got.Id != id.Value || got.Destination != "Seattle, WA" || got.Items[0] != "Amazon Echo Dot" {
		return fmt.Errorf("got %v for id %q", got, id.Value)
	}
	_, err = c.om.AddOrder(c.ctx, got)
	return wantStatus(err, codes.AlreadyExists, id.Value)
}

func (c *checker) orderNotFound() error {
	_, err := c.om.GetOrder(c.ctx, wrapperspb.String("999"))
	return wantStatus(err, codes.NotFound, `"999"`)
}

func (c *checker) searchOrders() error {
	stream, err := c.om.SearchOrders(c.ctx, wrapperspb.String("Google"))
	if err != nil {
		return err
	}
	var ids []string
	for {
		o, err := stream.Recv()
		if err == io.EOF {
			break
		}
		if err != nil {
			return err
		}
		ids = append(ids, o.Id)
	}
	if strings.Join(ids, ",") != "102,104" {
		return fmt.Errorf("got orders %v, want [102 104]", ids)
	}
	return nil
}

func (c *checker) updateOrders() error {
	stream, err := c.om.UpdateOrders(c.ctx)
	if err != nil {
		return err
	}
	for _, id := range []string{"102", "103"} {
		o, err := c.om.GetOrder(c.ctx, wrapperspb.String(id))
		if err != nil {
			return err
		}
		o.Description = "updated by grpc-go"
		if err := stream.Send(o); err != nil {
			return err
		}
	}
	reply, err := stream.CloseAndRecv()
	if err != nil {
		return err
	}
	if reply.Value != "102, 103" {
		return fmt.Errorf("reply %q, want \"102, 103\"", reply.Value)
	}
	o, err := c.om.GetOrder(c.ctx, wrapperspb.String("103"))
	if err != nil {
		return err
	}
	if o.Description != "updated by grpc-go" {
		return fmt.Errorf("103 not updated: %v", o)
	}
	return nil
}

func (c *checker) updateUnknownChangesNothing() error {
	stream, err := c.om.UpdateOrders(c.ctx)
	if err != nil {
		return err
	}
	if err := stream.Send(&pb.Order{Id: "105", Destination: "Nowhere"}); err != nil {
		return err
	}
	if err := stream.Send(&pb.Order{Id: "999"}); err != nil {
		return err
	}
	_, err = stream.CloseAndRecv()
	if err := wantStatus(err, codes.NotFound, `"999"`); err != nil {
		return err
	}
	o, err := c.om.GetOrder(c.ctx, wrapperspb.String("105"))
	if err != nil {
		return err
	}
	if o.Destination != "San Jose, CA" {
		return fmt.Errorf("a failed update changed 105: %v", o)
	}
	return nil
}

func shipmentIDs(s *pb.CombinedShipment) string {
	var ids []string
	for _, o := range s.OrdersList {
		ids = append(ids, o.Id)
	}
	return s.Status + ":" + strings.Join(ids, ",")
}

func (c *checker) processOrders() error {
	stream, err := c.om.ProcessOrders(c.ctx)
	if err != nil {
		return err
	}
	for _, id := range []string{"102", "104", "104", "106"} {
		if err := stream.Send(wrapperspb.String(id)); err != nil {
			return err
		}
	}
	// Mountain View's shipment is full: it must arrive before we half-close.
	full, err := stream.Recv()
	if err != nil {
		return err
	}
	if got := shipmentIDs(full); got != "full:102,104,106" {
		return fmt.Errorf("first shipment %s, want full:102,104,106", got)
	}
	for _, id := range []string{"103", "105"} {
		if err := stream.Send(wrapperspb.String(id)); err != nil {
			return err
		}
	}
	if err := stream.CloseSend(); err != nil {
		return err
	}
	var rest []string
	for {
		s, err := stream.Recv()
		if err == io.EOF {
			break
		}
		if err != nil {
			return err
		}
		rest = append(rest, shipmentIDs(s))
	}
	sort.Strings(rest)
	if strings.Join(rest, " ") != "remainder:103,105" {
		return fmt.Errorf("after half-close got %v, want [remainder:103,105]", rest)
	}
	return nil
}

func (c *checker) processUnknown() error {
	stream, err := c.om.ProcessOrders(c.ctx)
	if err != nil {
		return err
	}
	if err := stream.Send(wrapperspb.String("999")); err != nil {
		return err
	}
	if err := stream.CloseSend(); err != nil {
		return err
	}
	_, err = stream.Recv()
	return wantStatus(err, codes.NotFound, `"999"`)
}

func main() {
	addr := flag.String("server_addr", "127.0.0.1:50051", "the server, HOST:PORT")
	flag.Parse()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	conn, err := grpc.DialContext(ctx, *addr, grpc.WithInsecure(), grpc.WithBlock())
	if err != nil {
		fmt.Fprintf(os.Stderr, "client: cannot reach %s: %v\n", *addr, err)
		os.Exit(1)
	}
	defer conn.Close()
	c := &checker{ctx: ctx, pi: pb.NewProductInfoClient(conn), om: pb.NewOrderManagementClient(conn)}
	c.run("product_add_get", c.productAddGet)
	c.run("product_not_found", c.productNotFound)
	c.run("product_concurrent_adds", c.productConcurrentAdds)
	c.run("order_add_get", c.orderAddGet)
	c.run("order_not_found", c.orderNotFound)
	c.run("search_orders", c.searchOrders)
	c.run("update_orders", c.updateOrders)
	c.run("update_unknown_changes_nothing", c.updateUnknownChangesNothing)
	c.run("process_orders", c.processOrders)
	c.run("process_unknown", c.processUnknown)
	if c.failed {
		os.Exit(1)
	}
}
