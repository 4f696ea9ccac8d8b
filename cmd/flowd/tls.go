package main

import (
	"crypto/tls"
	"fmt"
	"sync/atomic"
)

// certReloader serves the listener's certificate and swaps it for the one on
// disk on Reload, so a renewed certificate takes effect on SIGHUP without
// dropping connections.
type certReloader struct {
	certFile, keyFile string
	cert              atomic.Pointer[tls.Certificate]
}

// newCertReloader loads the certificate and key, failing when either is
// missing or they do not match.
func newCertReloader(certFile, keyFile string) (*certReloader, error) {
	r := &certReloader{certFile: certFile, keyFile: keyFile}
	if err := r.Reload(); err != nil {
		return nil, err
	}
	return r, nil
}

// Reload reads the files again; on error the previous certificate stays.
func (r *certReloader) Reload() error {
	c, err := tls.LoadX509KeyPair(r.certFile, r.keyFile)
	if err != nil {
		return fmt.Errorf("-tls-cert %s, -tls-key %s: %w", r.certFile, r.keyFile, err)
	}
	r.cert.Store(&c)
	return nil
}

// Config returns the listener's TLS configuration: TLS 1.2 at least, the
// certificate chosen per handshake by GetCertificate.
func (r *certReloader) Config() *tls.Config {
	return &tls.Config{
		MinVersion: tls.VersionTLS12,
		GetCertificate: func(*tls.ClientHelloInfo) (*tls.Certificate, error) {
			return r.cert.Load(), nil
		},
		NextProtos: []string{"http/1.1"},
	}
}
