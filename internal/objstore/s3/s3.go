// Package s3 implements objstore.Store over an S3 bucket (AWS, or any S3
// endpoint such as MinIO, Ceph, R2 or the Versity gateway), with the same
// behaviour as the local store in package objstore/file: s3://bucket/prefix
// is the remote twin of file:///path.
//
// Credentials come from the SDK's default chain (environment, shared config,
// web identity for IRSA, container and instance roles) unless Options names a
// provider. Transient failures (5xx, 503 SlowDown, connection resets,
// timeouts) are retried by the SDK's standard retryer with exponential
// backoff and jitter.
package s3

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"sort"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/aws/retry"
	awshttp "github.com/aws/aws-sdk-go-v2/aws/transport/http"
	"github.com/aws/aws-sdk-go-v2/config"
	// manager is marked deprecated in favour of transfermanager, which is
	// still v0.x; manager is maintained and its API is stable.
	"github.com/aws/aws-sdk-go-v2/feature/s3/manager"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/aws/aws-sdk-go-v2/service/s3/types"
	"github.com/aws/smithy-go"
	"github.com/aws/smithy-go/logging"

	"github.com/batchkv/batchkv/internal/objstore"
)

var _ objstore.Store = (*Store)(nil)

// Defaults for Options fields left zero.
const (
	DefaultRegion          = "us-east-1"
	DefaultPartSize        = 16 << 20
	DefaultConcurrency     = 4
	DefaultMaxAttempts     = 8
	DefaultMaxBackoff      = 20 * time.Second
	DefaultResponseTimeout = 2 * time.Minute
	DefaultListPageSize    = 1000
)

// Options configures a Store. Every field has a default.
type Options struct {
	// Endpoint overrides the S3 endpoint URL (http://host:port or https://…)
	// for MinIO, Ceph, R2 or other S3-compatible servers. Default: AWS.
	Endpoint string
	// PathStyle addresses buckets as endpoint/bucket/key instead of
	// bucket.endpoint/key; most non-AWS servers need it. Default false.
	PathStyle bool
	// Region is the bucket's region. Default: AWS_REGION or the shared
	// config's region, else us-east-1 (what non-AWS endpoints expect).
	Region string
	// PartSize is the multipart part size; objects of at least this size are
	// uploaded in parts, smaller ones with one PutObject. Minimum 5 MiB (S3's
	// limit). Default 16 MiB.
	PartSize int64
	// Concurrency is the number of parts of one object uploaded at once.
	// Default 4.
	Concurrency int
	// MaxAttempts bounds the attempts of one request (1 = no retry).
	// Default 8.
	MaxAttempts int
	// MaxBackoff caps the delay between attempts. Default 20 s.
	MaxBackoff time.Duration
	// ResponseTimeout bounds the wait for a response's headers once the
	// request is written, so a stalled server becomes a retried timeout.
	// Default 2 min.
	ResponseTimeout time.Duration
	// ListPageSize is the page size of listings (at most 1000). Default 1000.
	ListPageSize int
	// Credentials, when set, replaces the default credential chain.
	Credentials aws.CredentialsProvider
	// SDKChecksums keeps the SDK's default integrity checksums (CRC32 on
	// every upload, validated on downloads) with a custom Endpoint too. By
	// default they are on for AWS and off (only where an API requires them)
	// for custom endpoints: many S3-compatible servers (older MinIO, Ceph,
	// R2) reject them. Content is verified end to end by the release file's
	// SHA-256 either way.
	SDKChecksums bool
}

func (o *Options) checksumsWhenRequired() bool { return o.Endpoint != "" && !o.SDKChecksums }

func (o *Options) ensureDefaults() error {
	if o.PartSize == 0 {
		o.PartSize = DefaultPartSize
	}
	if o.PartSize < manager.MinUploadPartSize {
		return fmt.Errorf("s3: part size %d is under S3's minimum of %d", o.PartSize, manager.MinUploadPartSize)
	}
	if o.Concurrency <= 0 {
		o.Concurrency = DefaultConcurrency
	}
	if o.MaxAttempts <= 0 {
		o.MaxAttempts = DefaultMaxAttempts
	}
	if o.MaxBackoff <= 0 {
		o.MaxBackoff = DefaultMaxBackoff
	}
	if o.ResponseTimeout <= 0 {
		o.ResponseTimeout = DefaultResponseTimeout
	}
	if o.ListPageSize <= 0 || o.ListPageSize > 1000 {
		o.ListPageSize = DefaultListPageSize
	}
	return nil
}

// NewClient returns an S3 client configured from opts (with defaults filled
// in): the default config chain, the standard retryer, the endpoint override.
func NewClient(ctx context.Context, opts Options) (*s3.Client, error) {
	if err := opts.ensureDefaults(); err != nil {
		return nil, err
	}
	httpClient := awshttp.NewBuildableClient().WithTransportOptions(func(t *http.Transport) {
		t.ResponseHeaderTimeout = opts.ResponseTimeout
		// Many files download in parallel from one host.
		t.MaxIdleConnsPerHost = 64
	})
	loadOpts := []func(*config.LoadOptions) error{
		config.WithHTTPClient(httpClient),
		config.WithRetryer(func() aws.Retryer {
			return retry.NewStandard(func(o *retry.StandardOptions) {
				o.MaxAttempts = opts.MaxAttempts
				o.MaxBackoff = opts.MaxBackoff
				o.Backoff = retry.NewExponentialJitterBackoff(opts.MaxBackoff)
			})
		}),
	}
	if opts.Region != "" {
		loadOpts = append(loadOpts, config.WithRegion(opts.Region))
	}
	if opts.Credentials != nil {
		loadOpts = append(loadOpts, config.WithCredentialsProvider(opts.Credentials))
	}
	if opts.checksumsWhenRequired() {
		loadOpts = append(loadOpts,
			config.WithRequestChecksumCalculation(aws.RequestChecksumCalculationWhenRequired),
			config.WithResponseChecksumValidation(aws.ResponseChecksumValidationWhenRequired))
	}
	cfg, err := config.LoadDefaultConfig(ctx, loadOpts...)
	if err != nil {
		return nil, fmt.Errorf("s3: cannot load aws config: %w", err)
	}
	if cfg.Region == "" {
		cfg.Region = DefaultRegion
	}
	return s3.NewFromConfig(cfg, func(o *s3.Options) {
		if opts.Endpoint != "" {
			o.BaseEndpoint = aws.String(opts.Endpoint)
		}
		o.UsePathStyle = opts.PathStyle
		// The SDK would log to stderr, around our structured logs, that
		// ranged and multipart GETs carry no whole-object checksum; the
		// release file's SHA-256 is what verifies content.
		o.Logger = logging.Nop{}
		o.DisableLogOutputChecksumValidationSkipped = true
	}), nil
}

// Store is an objstore.Store under s3://bucket/prefix.
type Store struct {
	client   *s3.Client
	uploader *manager.Uploader
	bucket   string
	prefix   string // "" or "a/b/" (always ending in '/')
	opts     Options
}

// New returns a store for the objects under s3://bucket/prefix. It makes no
// request: a wrong bucket or missing permission shows on first use.
func New(ctx context.Context, bucket, prefix string, opts Options) (*Store, error) {
	if bucket == "" {
		return nil, errors.New("s3: empty bucket name")
	}
	prefix = strings.Trim(prefix, "/")
	if prefix != "" {
		if err := objstore.ValidKey(prefix); err != nil {
			return nil, fmt.Errorf("s3: prefix: %w", err)
		}
		prefix += "/"
	}
	if err := opts.ensureDefaults(); err != nil {
		return nil, err
	}
	client, err := NewClient(ctx, opts)
	if err != nil {
		return nil, err
	}
	uploader := manager.NewUploader(client, func(u *manager.Uploader) {
		u.PartSize = opts.PartSize
		u.Concurrency = opts.Concurrency
		u.LeavePartsOnError = false // abort the multipart upload on failure
		if opts.checksumsWhenRequired() {
			// The uploader does not follow the client's setting.
			u.RequestChecksumCalculation = aws.RequestChecksumCalculationWhenRequired
		}
	})
	return &Store{client: client, uploader: uploader, bucket: bucket, prefix: prefix, opts: opts}, nil
}

// Client returns the underlying S3 client (tests create buckets with it).
func (s *Store) Client() *s3.Client { return s.client }

func (s *Store) String() string { return "s3://" + s.bucket + "/" + strings.TrimSuffix(s.prefix, "/") }

func (s *Store) key(key string) (string, error) {
	if err := objstore.ValidKey(key); err != nil {
		return "", err
	}
	return s.prefix + key, nil
}

// listPrefix checks a listing prefix the way the file store does: its
// directory part must be a valid key.
func (s *Store) listPrefix(prefix string) (string, error) {
	if i := strings.LastIndex(prefix, "/"); i >= 0 {
		if err := objstore.ValidKey(prefix[:i]); err != nil {
			return "", err
		}
	}
	return s.prefix + prefix, nil
}

// List pages through ListObjectsV2.
func (s *Store) List(ctx context.Context, prefix string) ([]objstore.Object, error) {
	full, err := s.listPrefix(prefix)
	if err != nil {
		return nil, err
	}
	var out []objstore.Object
	p := s3.NewListObjectsV2Paginator(s.client, &s3.ListObjectsV2Input{
		Bucket:  aws.String(s.bucket),
		Prefix:  aws.String(full),
		MaxKeys: aws.Int32(int32(s.opts.ListPageSize)),
	})
	for p.HasMorePages() {
		page, err := p.NextPage(ctx)
		if err != nil {
			return nil, s.wrap("list", prefix, err)
		}
		for _, o := range page.Contents {
			key := strings.TrimPrefix(aws.ToString(o.Key), s.prefix)
			// Folder markers ("dir/") and keys the file store could not hold
			// are not objects of this store.
			if objstore.ValidKey(key) != nil {
				continue
			}
			out = append(out, objstore.Object{
				Key:     key,
				Size:    aws.ToInt64(o.Size),
				ETag:    aws.ToString(o.ETag),
				ModTime: aws.ToTime(o.LastModified),
			})
		}
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Key < out[j].Key })
	return out, nil
}

// ListPrefixes pages through a delimiter listing.
func (s *Store) ListPrefixes(ctx context.Context, prefix string) ([]string, error) {
	if prefix != "" && !strings.HasSuffix(prefix, "/") {
		return nil, fmt.Errorf("%s: list prefixes: prefix %q must end in /", s, prefix)
	}
	if prefix != "" {
		if err := objstore.ValidKey(strings.TrimSuffix(prefix, "/")); err != nil {
			return nil, err
		}
	}
	full := s.prefix + prefix
	var out []string
	p := s3.NewListObjectsV2Paginator(s.client, &s3.ListObjectsV2Input{
		Bucket:    aws.String(s.bucket),
		Prefix:    aws.String(full),
		Delimiter: aws.String("/"),
		MaxKeys:   aws.Int32(int32(s.opts.ListPageSize)),
	})
	for p.HasMorePages() {
		page, err := p.NextPage(ctx)
		if err != nil {
			return nil, s.wrap("list prefixes", prefix, err)
		}
		for _, cp := range page.CommonPrefixes {
			name := strings.TrimSuffix(strings.TrimPrefix(aws.ToString(cp.Prefix), full), "/")
			if name == "" || objstore.ValidKey(name) != nil || strings.Contains(name, "/") {
				continue
			}
			out = append(out, name)
		}
	}
	sort.Strings(out)
	return out, nil
}

// Stat is a HeadObject.
func (s *Store) Stat(ctx context.Context, key string) (objstore.Object, error) {
	k, err := s.key(key)
	if err != nil {
		return objstore.Object{}, err
	}
	out, err := s.client.HeadObject(ctx, &s3.HeadObjectInput{Bucket: aws.String(s.bucket), Key: aws.String(k)})
	if err != nil {
		return objstore.Object{}, s.wrap("stat", key, err)
	}
	return objstore.Object{
		Key:     key,
		Size:    aws.ToInt64(out.ContentLength),
		ETag:    aws.ToString(out.ETag),
		ModTime: aws.ToTime(out.LastModified),
	}, nil
}

// ReadRange is a ranged GetObject. The reader fails with
// io.ErrUnexpectedEOF if the body ends before the length the server
// announced, so a cut connection never reads as short data.
func (s *Store) ReadRange(ctx context.Context, key string, offset, length int64) (io.ReadCloser, error) {
	k, err := s.key(key)
	if err != nil {
		return nil, err
	}
	if offset < 0 {
		return nil, fmt.Errorf("%s: read %s: negative offset %d", s, key, offset)
	}
	if length == 0 {
		// S3 has no empty range: check existence and bounds with a HEAD.
		o, err := s.Stat(ctx, key)
		if err != nil {
			return nil, err
		}
		if offset > o.Size {
			return nil, fmt.Errorf("%s: read %s: offset %d outside 0..%d", s, key, offset, o.Size)
		}
		return io.NopCloser(strings.NewReader("")), nil
	}
	rng := fmt.Sprintf("bytes=%d-", offset)
	if length > 0 {
		rng = fmt.Sprintf("bytes=%d-%d", offset, offset+length-1)
	}
	out, err := s.client.GetObject(ctx, &s3.GetObjectInput{
		Bucket: aws.String(s.bucket),
		Key:    aws.String(k),
		Range:  aws.String(rng),
	})
	if err != nil {
		if httpStatus(err) == http.StatusRequestedRangeNotSatisfiable {
			// Reading from the very end is an empty read, as with a file.
			o, serr := s.Stat(ctx, key)
			if serr != nil {
				return nil, serr
			}
			if offset == o.Size {
				return io.NopCloser(strings.NewReader("")), nil
			}
			return nil, fmt.Errorf("%s: read %s: offset %d outside 0..%d", s, key, offset, o.Size)
		}
		return nil, s.wrap("read", key, err)
	}
	want := aws.ToInt64(out.ContentLength)
	if out.ContentLength == nil {
		want = -1
	}
	return &bodyReader{rc: out.Body, want: want, name: s.String() + "/" + key}, nil
}

// bodyReader turns an early EOF into io.ErrUnexpectedEOF.
type bodyReader struct {
	rc   io.ReadCloser
	want int64 // -1: unknown
	got  int64
	name string
}

func (b *bodyReader) Read(p []byte) (int, error) {
	n, err := b.rc.Read(p)
	b.got += int64(n)
	if err == io.EOF && b.want >= 0 && b.got < b.want {
		return n, fmt.Errorf("%s: body ended after %d of %d bytes: %w", b.name, b.got, b.want, io.ErrUnexpectedEOF)
	}
	if err != nil && err != io.EOF {
		return n, fmt.Errorf("%s: read body: %w", b.name, err)
	}
	return n, err
}

func (b *bodyReader) Close() error { return b.rc.Close() }

// Put uploads with one PutObject below the part size and with a parallel
// multipart upload from there on. Both are atomic on S3: readers see the
// old object or the complete new one.
func (s *Store) Put(ctx context.Context, key string, r io.ReaderAt, size int64) error {
	k, err := s.key(key)
	if err != nil {
		return err
	}
	if size < 0 {
		return fmt.Errorf("%s: put %s: negative size", s, key)
	}
	// A seekable body: the SDK signs and checksums it before sending (over
	// plain HTTP it refuses unseekable bodies) and rewinds it to retry.
	body := io.NewSectionReader(strictReaderAt{r, size}, 0, size)
	if size < s.opts.PartSize {
		_, err = s.client.PutObject(ctx, &s3.PutObjectInput{
			Bucket:        aws.String(s.bucket),
			Key:           aws.String(k),
			Body:          body,
			ContentLength: aws.Int64(size),
		})
	} else {
		// The uploader reads parts straight from the ReaderAt (no buffering)
		// and aborts the multipart upload if any part fails.
		_, err = s.uploader.Upload(ctx, &s3.PutObjectInput{
			Bucket: aws.String(s.bucket),
			Key:    aws.String(k),
			Body:   body,
		})
	}
	if err != nil {
		return s.wrap("put", key, err)
	}
	return nil
}

// strictReaderAt fails a read that ends before size, so a short source
// becomes an error instead of a short object.
type strictReaderAt struct {
	r    io.ReaderAt
	size int64
}

func (s strictReaderAt) ReadAt(p []byte, off int64) (int, error) {
	n, err := s.r.ReadAt(p, off)
	if n < len(p) && off+int64(n) < s.size {
		if err == nil || err == io.EOF {
			err = io.ErrUnexpectedEOF
		}
		return n, fmt.Errorf("source ended at %d of %d bytes: %w", off+int64(n), s.size, err)
	}
	return n, err
}

// Delete is a DeleteObject (which succeeds for a missing key).
func (s *Store) Delete(ctx context.Context, key string) error {
	k, err := s.key(key)
	if err != nil {
		return err
	}
	if _, err := s.client.DeleteObject(ctx, &s3.DeleteObjectInput{Bucket: aws.String(s.bucket), Key: aws.String(k)}); err != nil {
		return s.wrap("delete", key, err)
	}
	return nil
}

// wrap adds the store and key to err and maps a missing key to
// objstore.ErrNotExist. A missing bucket is a plain error where the answer
// says so (listings, GETs: a typo in the URL must not read as "nothing
// published yet"); a HEAD's 404 has no body, so Stat cannot tell a missing
// bucket from a missing key.
func (s *Store) wrap(op, key string, err error) error {
	var nsk *types.NoSuchKey
	var nf *types.NotFound
	var api smithy.APIError
	switch {
	case errors.As(err, &nsk), errors.As(err, &nf):
		return fmt.Errorf("%s: %s: %w (%v)", s, key, objstore.ErrNotExist, err)
	case errors.As(err, &api) && api.ErrorCode() == "NoSuchBucket":
		return fmt.Errorf("%s: %s %s: bucket %q does not exist: %w", s, op, key, s.bucket, err)
	case httpStatus(err) == http.StatusNotFound && (op == "stat" || op == "read"):
		return fmt.Errorf("%s: %s: %w (%v)", s, key, objstore.ErrNotExist, err)
	}
	return fmt.Errorf("%s: %s %s: %w", s, op, key, err)
}

func httpStatus(err error) int {
	var re *awshttp.ResponseError
	if errors.As(err, &re) {
		return re.HTTPStatusCode()
	}
	return 0
}
