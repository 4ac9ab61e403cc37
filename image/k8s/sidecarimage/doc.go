// Package sidecarimage builds the OCI image of the refresh sidecar
// (`timenodectl refresh`) without a container engine: a static
// timenodectl, built from the checkout, as the only file of one layer on
// an empty base, run as a numeric non-root user.
package sidecarimage
