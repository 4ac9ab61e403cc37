// Package nftables holds the appliance's firewall, timenode.nft (the port
// matrix of SPEC.md section 6 as one "inet timenode" table whose source
// ranges are named sets), an example site file, and the tests that prove it:
// a syntax check with `nft -c`, and a port scan across network namespaces the
// test builds for itself, where exactly the allowed ports must answer each
// source and only the allowed egress must get out.
//
// The package has no Go API; internal/nstool is the fixture program the
// namespace test runs on both ends of the wire.
package nftables
