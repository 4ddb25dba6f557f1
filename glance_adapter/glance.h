// Glance v2: image metadata, listing, a streaming download that resumes after dropped
// connections (Range) and retries 5xx with backoff, and a streaming upload for snapshots.
// Every call takes the caller's token; an empty token means berthd's service token from
// Keystone (renewed once if Glance refuses it).
#pragma once

#include <atomic>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "glance_adapter/http.h"
#include "glance_adapter/keystone.h"
#include "glance_adapter/retry.h"

namespace berth::glance {

struct GlanceOptions {
  std::string api_url;  // overrides the catalog ("http://controller:9292"); empty: catalog
  std::string interface = "public";
  std::string region_name;  // empty: any region
  HttpOptions http;
  RetryPolicy retry;
};

struct ImageMeta {
  std::string id;
  std::string name;
  std::string status;  // queued | saving | active | killed | deleted | ...
  std::string container_format;
  std::string disk_format;
  std::string checksum;  // md5 hex
  std::string os_hash_algo;
  std::string os_hash_value;
  std::string updated_at;
  int64_t size = -1;
  std::map<std::string, std::string> properties;  // every other string field

  // What identifies this image's data: "sha512:<hex>", else "md5:<hex>", else "".
  std::string HashKey() const;
};

// Glance ids are UUIDs; anything with characters other than letters, digits, '-' and '_'
// (or longer than 64) is not one and never goes into a URL or a file name.
bool IsGlanceId(const std::string& id);

// Parses a GET /v2/images/{id} body (or one element of a list).
ImageMeta ParseImageMeta(std::string_view json);
// "http://g:9292" or "http://g:9292/v2/" -> "http://g:9292/v2".
std::string V2Url(const std::string& url);

struct NewImage {
  std::string id;  // may be empty: Glance picks one
  std::string name;
  std::string container_format;
  std::string disk_format;
  std::map<std::string, std::string> properties;
};

class GlanceClient {
 public:
  // keystone may be null when api_url is set and callers always pass a token.
  GlanceClient(GlanceOptions options, KeystoneClient* keystone);

  ImageMeta GetImage(const std::string& id, const std::string& token);
  // Every image matching the filters (Glance's query parameters: property=value, status),
  // following the pagination links.
  std::vector<ImageMeta> ListImages(const std::string& token,
                                    const std::map<std::string, std::string>& filters);
  // Streams /v2/images/{id}/file into sink. A dropped connection resumes where it broke
  // (Range: bytes=N-; when Glance ignores the range the bytes already seen are skipped), so
  // the sink sees every byte once, in order. Returns the byte count.
  uint64_t Download(const std::string& id, const std::string& token,
                    const std::function<void(const char*, size_t)>& sink);
  // POST /v2/images.
  ImageMeta CreateImage(const NewImage& image, const std::string& token);
  // PATCH /v2/images/{id} with "replace"/"add" operations for the fields given.
  ImageMeta UpdateImage(const std::string& id, const std::map<std::string, std::string>& fields,
                        const ImageMeta& current, const std::string& token);
  // PUT /v2/images/{id}/file from a file, streamed; a failed attempt is sent again from
  // the start. Glance answers 204.
  void Upload(const std::string& id, const std::string& token, const std::string& path);

  // The image API's base URL ("http://g:9292/v2").
  std::string BaseUrl(const std::string& token);
  const GlanceOptions& options() const { return options_; }

 private:
  // One JSON call with retries; a 401 to the service token renews it once.
  HttpResponse Call(HttpRequest req, const std::string& token, const std::string& what,
                    std::initializer_list<long> ok);
  std::string TokenFor(const std::string& token);

  GlanceOptions options_;
  KeystoneClient* keystone_;
};

}  // namespace berth::glance
