package s3test

import "syscall"

func setXattr(path, name string, value []byte) error { return syscall.Setxattr(path, name, value, 0) }
