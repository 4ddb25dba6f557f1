// libarchive converts pax (UTF-8) member names to the calling thread's locale; in the "C"
// locale that fails for any non-ASCII name. This switches the current thread (only) to
// C.UTF-8 for the scope of an archive read.
#pragma once

#include <locale.h>

namespace berth::store {

class ScopedUtf8Locale {
 public:
  ScopedUtf8Locale() : loc_(::newlocale(LC_CTYPE_MASK, "C.UTF-8", static_cast<locale_t>(0))) {
    if (loc_) old_ = ::uselocale(loc_);
  }
  ~ScopedUtf8Locale() {
    if (loc_) {
      ::uselocale(old_);
      ::freelocale(loc_);
    }
  }
  ScopedUtf8Locale(const ScopedUtf8Locale&) = delete;
  ScopedUtf8Locale& operator=(const ScopedUtf8Locale&) = delete;

 private:
  locale_t loc_;
  locale_t old_ = static_cast<locale_t>(0);
};

}  // namespace berth::store
