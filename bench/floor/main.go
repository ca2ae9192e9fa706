// The floor for batchhub's HTTP benches: the least an HTTP server can do for a request that
// must be on disk when it is answered. Every request with a body has it written to a new file
// in -dir, fsynced, closed and removed, then gets 201 and a short JSON answer; any other
// request gets 200. Compiled Go with no parsing, no authentication and no database: behind the
// hub's proxy it measures what this machine allows, not what batchhub spends.
//
// It listens on -addr (port 0: any free one) and prints "listening on <port>" once ready.
package main

import (
	"flag"
	"fmt"
	"io"
	"log"
	"net"
	"net/http"
	"os"
)

func main() {
	addr := flag.String("addr", "127.0.0.1:0", "address to listen on")
	dir := flag.String("dir", os.TempDir(), "folder for the bodies written")
	flag.Parse()

	http.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		if r.ContentLength == 0 {
			w.WriteHeader(http.StatusOK)
			return
		}
		size, err := store(r.Body, *dir)
		if err != nil {
			http.Error(w, err.Error(), http.StatusInternalServerError)
			return
		}
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(http.StatusCreated)
		fmt.Fprintf(w, "{\"size\": %d}\n", size)
	})

	listener, err := net.Listen("tcp", *addr)
	if err != nil {
		log.Fatal(err)
	}
	fmt.Printf("listening on %d\n", listener.Addr().(*net.TCPAddr).Port)
	log.Fatal(http.Serve(listener, nil))
}

// store writes body to a new file in dir and syncs it, then removes it (the benches send
// gigabytes); it returns the bytes written.
func store(body io.Reader, dir string) (int64, error) {
	f, err := os.CreateTemp(dir, "floor-")
	if err != nil {
		return 0, err
	}
	defer os.Remove(f.Name())
	defer f.Close()
	size, err := io.Copy(f, body)
	if err != nil {
		return size, err
	}
	return size, f.Sync()
}
