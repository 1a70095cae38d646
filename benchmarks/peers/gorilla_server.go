// SPDX-License-Identifier: Apache-2.0

// Go + gorilla/websocket (Debian's packages), with the hub of gorilla's chat example:
// one goroutine owns the client set; each client has a buffered send channel and a writer.
package main

import (
	"log"
	"net/http"
	"os"

	"github.com/gorilla/websocket"
)

type client struct {
	conn *websocket.Conn
	send chan []byte
}

type hub struct {
	clients    map[*client]bool
	broadcast  chan []byte
	register   chan *client
	unregister chan *client
}

func (h *hub) run() {
	for {
		select {
		case c := <-h.register:
			h.clients[c] = true
		case c := <-h.unregister:
			if h.clients[c] {
				delete(h.clients, c)
				close(c.send)
			}
		case message := <-h.broadcast:
			for c := range h.clients {
				select {
				case c.send <- message:
				default:
					delete(h.clients, c)
					close(c.send)
				}
			}
		}
	}
}

var upgrader = websocket.Upgrader{ReadBufferSize: 4096, WriteBufferSize: 4096, CheckOrigin: func(*http.Request) bool { return true }}

func main() {
	// PEER_DEFLATE=1: permessage-deflate (gorilla's EnableCompression; compare.py's idle run).
	upgrader.EnableCompression = os.Getenv("PEER_DEFLATE") == "1"
	h := &hub{clients: map[*client]bool{}, broadcast: make(chan []byte, 256), register: make(chan *client), unregister: make(chan *client)}
	go h.run()
	http.HandleFunc("/msg", func(w http.ResponseWriter, r *http.Request) {
		conn, err := upgrader.Upgrade(w, r, nil)
		if err != nil {
			return
		}
		c := &client{conn: conn, send: make(chan []byte, 256)}
		h.register <- c
		go func() {
			for message := range c.send {
				if c.conn.WriteMessage(websocket.TextMessage, message) != nil {
					break
				}
			}
			c.conn.Close()
		}()
		go func() {
			defer func() { h.unregister <- c; c.conn.Close() }()
			c.conn.SetReadLimit(1 << 20)
			for {
				_, message, err := c.conn.ReadMessage()
				if err != nil {
					return
				}
				h.broadcast <- message
			}
		}()
	})
	// PEER_TLS_CERT and PEER_TLS_KEY: serve wss:// with crypto/tls (compare.py --tls).
	if cert, key := os.Getenv("PEER_TLS_CERT"), os.Getenv("PEER_TLS_KEY"); cert != "" {
		log.Fatal(http.ListenAndServeTLS("127.0.0.1:"+os.Args[1], cert, key, nil))
	}
	log.Fatal(http.ListenAndServe("127.0.0.1:"+os.Args[1], nil))
}
