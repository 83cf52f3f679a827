//go:build !linux

package s3test

// setXattr is only checked on Linux; elsewhere the gateway reports problems itself.
func setXattr(path, name string, value []byte) error { return nil }
