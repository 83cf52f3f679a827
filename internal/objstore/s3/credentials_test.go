package s3_test

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/batchkv/batchkv/internal/objstore"
	s3store "github.com/batchkv/batchkv/internal/objstore/s3"
	"github.com/batchkv/batchkv/internal/s3test"
)

// TestDefaultChainEnv: with no Credentials option the store takes the
// default chain, here the AWS_* environment (set by s3test).
func TestDefaultChainEnv(t *testing.T) {
	ctx := context.Background()
	srv := s3test.Start(t)
	opts := srv.Options()
	opts.Credentials = nil
	st, err := s3store.New(ctx, srv.Bucket, "ds", opts)
	if err != nil {
		t.Fatal(err)
	}
	if err := st.Put(ctx, "k", strings.NewReader("v"), 1); err != nil {
		t.Fatalf("Put with env credentials: %v", err)
	}

	t.Setenv("AWS_SECRET_ACCESS_KEY", "wrong-secret")
	st, err = s3store.New(ctx, srv.Bucket, "ds", opts)
	if err != nil {
		t.Fatal(err)
	}
	_, err = st.Stat(ctx, "k")
	if err == nil || errors.Is(err, objstore.ErrNotExist) {
		t.Fatalf("Stat with a wrong secret = %v; want an authorization error", err)
	}
	if _, err := st.List(ctx, ""); err == nil || !strings.Contains(err.Error(), "SignatureDoesNotMatch") {
		t.Fatalf("List with a wrong secret = %v; want SignatureDoesNotMatch", err)
	}
}

// TestWebIdentity: the IRSA path. With AWS_ROLE_ARN and
// AWS_WEB_IDENTITY_TOKEN_FILE set (as EKS injects them) and no keys, the
// store asks STS (here a small stand-in on 127.0.0.1, reached through
// AWS_ENDPOINT_URL_STS) for credentials with the token, and signs its S3
// requests with what STS returned.
func TestWebIdentity(t *testing.T) {
	ctx := context.Background()
	srv := s3test.Start(t)
	var calls atomic.Int64
	sts := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		r.ParseForm()
		if r.Form.Get("Action") != "AssumeRoleWithWebIdentity" || r.Form.Get("WebIdentityToken") != "the-projected-token" ||
			r.Form.Get("RoleArn") != "arn:aws:iam::123456789012:role/batchkv-syncer" {
			http.Error(w, "unexpected request: "+r.Form.Encode(), http.StatusBadRequest)
			return
		}
		calls.Add(1)
		w.Header().Set("Content-Type", "text/xml")
		fmt.Fprintf(w, `<AssumeRoleWithWebIdentityResponse xmlns="https://sts.amazonaws.com/doc/2011-06-15/">
<AssumeRoleWithWebIdentityResult><Credentials><AccessKeyId>%s</AccessKeyId><SecretAccessKey>%s</SecretAccessKey>
<SessionToken></SessionToken><Expiration>2099-01-01T00:00:00Z</Expiration></Credentials>
<AssumedRoleUser><Arn>arn:aws:sts::123456789012:assumed-role/batchkv-syncer/s</Arn><AssumedRoleId>AROAEXAMPLE:s</AssumedRoleId></AssumedRoleUser>
</AssumeRoleWithWebIdentityResult><ResponseMetadata><RequestId>1</RequestId></ResponseMetadata></AssumeRoleWithWebIdentityResponse>`,
			s3test.AccessKey, s3test.SecretKey)
	}))
	defer sts.Close()
	token := filepath.Join(t.TempDir(), "token")
	if err := os.WriteFile(token, []byte("the-projected-token"), 0o600); err != nil {
		t.Fatal(err)
	}
	t.Setenv("AWS_ACCESS_KEY_ID", "")
	t.Setenv("AWS_SECRET_ACCESS_KEY", "")
	t.Setenv("AWS_ROLE_ARN", "arn:aws:iam::123456789012:role/batchkv-syncer")
	t.Setenv("AWS_WEB_IDENTITY_TOKEN_FILE", token)
	t.Setenv("AWS_ENDPOINT_URL_STS", sts.URL)

	opts := srv.Options()
	opts.Credentials = nil
	st, err := s3store.New(ctx, srv.Bucket, "ds", opts)
	if err != nil {
		t.Fatal(err)
	}
	if err := st.Put(ctx, "k", strings.NewReader("v"), 1); err != nil {
		t.Fatalf("Put with web identity credentials: %v", err)
	}
	if calls.Load() == 0 {
		t.Fatal("STS was never asked")
	}
}
