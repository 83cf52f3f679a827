package remote

import (
	"flag"
)

// AddFlags registers the S3 options on fs with the names every batchkv
// command shares (each also read from BATCHKV_S3_… through internal/cli):
// --s3-endpoint, --s3-path-style, --s3-region, --s3-max-attempts,
// --s3-sdk-checksums.
func (o *Options) AddFlags(fs *flag.FlagSet) {
	fs.StringVar(&o.S3.Endpoint, "s3-endpoint", o.S3.Endpoint, "S3 endpoint URL for S3-compatible stores (MinIO, Ceph, R2)")
	fs.BoolVar(&o.S3.PathStyle, "s3-path-style", o.S3.PathStyle, "use path-style S3 addressing (most S3-compatible stores need it)")
	fs.StringVar(&o.S3.Region, "s3-region", o.S3.Region, "S3 region (default: AWS_REGION or the AWS config, else us-east-1)")
	fs.IntVar(&o.S3.MaxAttempts, "s3-max-attempts", o.S3.MaxAttempts, "attempts per S3 request, retried with backoff and jitter (0: 8)")
	fs.BoolVar(&o.S3.SDKChecksums, "s3-sdk-checksums", o.S3.SDKChecksums, "send the AWS SDK's upload checksums to a custom --s3-endpoint too (off by default: many S3-compatible stores reject them)")
}
