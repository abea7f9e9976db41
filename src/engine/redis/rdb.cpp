#include "engine/redis/rdb.hpp"

#include <optional>

namespace dbops::engine::redis {
namespace {

class Reader {
 public:
  explicit Reader(std::string_view data) : data_(data) {}

  bool byte(unsigned char& out) {
    if (pos_ >= data_.size()) return false;
    out = static_cast<unsigned char>(data_[pos_++]);
    return true;
  }
  bool skip(std::size_t n) {
    if (data_.size() - pos_ < n) return false;
    pos_ += n;
    return true;
  }
  bool bytes(std::size_t n, std::string& out) {
    if (data_.size() - pos_ < n) return false;
    out.assign(data_.substr(pos_, n));
    pos_ += n;
    return true;
  }

  // A length; `special` is set for the string encodings (int, LZF).
  bool length(std::uint64_t& out, bool* special = nullptr) {
    unsigned char b = 0;
    if (!byte(b)) return false;
    if (special) *special = false;
    switch (b >> 6) {
      case 0:
        out = b & 0x3F;
        return true;
      case 1: {
        unsigned char c = 0;
        if (!byte(c)) return false;
        out = (static_cast<std::uint64_t>(b & 0x3F) << 8) | c;
        return true;
      }
      case 2: {
        const int n = b == 0x80 ? 4 : b == 0x81 ? 8 : 0;
        if (n == 0) return false;
        out = 0;
        for (int i = 0; i < n; ++i) {
          unsigned char c = 0;
          if (!byte(c)) return false;
          out = (out << 8) | c;
        }
        return true;
      }
      default:
        if (!special) return false;
        *special = true;
        out = b & 0x3F;
        return true;
    }
  }

  // A string (plain, integer-encoded or LZF-compressed), its bytes kept only
  // when `out` is given (LZF strings are kept compressed: only aux fields are
  // read, and Redis writes those plain).
  bool string(std::string* out) {
    bool special = false;
    std::uint64_t len = 0;
    if (!length(len, &special)) return false;
    if (!special) {
      if (out) return bytes(static_cast<std::size_t>(len), *out);
      return skip(static_cast<std::size_t>(len));
    }
    switch (len) {
      case 0:
      case 1:
      case 2: {
        const int n = len == 0 ? 1 : len == 1 ? 2 : 4;
        std::int64_t v = 0;
        for (int i = 0; i < n; ++i) {
          unsigned char c = 0;
          if (!byte(c)) return false;
          v |= static_cast<std::int64_t>(c) << (8 * i);
        }
        if (n == 1) v = static_cast<std::int8_t>(v);
        if (n == 2) v = static_cast<std::int16_t>(v);
        if (n == 4) v = static_cast<std::int32_t>(v);
        if (out) *out = std::to_string(v);
        return true;
      }
      case 3: {  // LZF: compressed length, plain length, data
        std::uint64_t clen = 0, plen = 0;
        if (!length(clen) || !length(plen)) return false;
        if (out) return bytes(static_cast<std::size_t>(clen), *out);
        return skip(static_cast<std::size_t>(clen));
      }
      default:
        return false;
    }
  }

  bool strings(std::uint64_t n) {
    for (std::uint64_t i = 0; i < n; ++i) {
      if (!string(nullptr)) return false;
    }
    return true;
  }

 private:
  std::string_view data_;
  std::size_t pos_ = 0;
};

// Skips one value of `type`; nullopt when the type cannot be skipped here.
std::optional<bool> skip_value(Reader& r, unsigned char type) {
  std::uint64_t n = 0;
  switch (type) {
    case 0:  // string
      return r.string(nullptr);
    case 1:   // list
    case 2:   // set
    case 14:  // quicklist (of ziplists)
      return r.length(n) && r.strings(n);
    case 4:  // hash
      return r.length(n) && r.strings(2 * n);
    case 3:  // zset: member, score as a short string
      if (!r.length(n)) return false;
      for (std::uint64_t i = 0; i < n; ++i) {
        unsigned char score_len = 0;
        if (!r.string(nullptr) || !r.byte(score_len)) return false;
        if (score_len < 253 && !r.skip(score_len)) return false;
      }
      return true;
    case 5:  // zset2: member, binary double
      if (!r.length(n)) return false;
      for (std::uint64_t i = 0; i < n; ++i) {
        if (!r.string(nullptr) || !r.skip(8)) return false;
      }
      return true;
    case 9:   // zipmap
    case 10:  // list ziplist
    case 11:  // intset
    case 12:  // zset ziplist
    case 13:  // hash ziplist
    case 16:  // hash listpack
    case 17:  // zset listpack
    case 20:  // set listpack
      return r.string(nullptr);
    case 18:  // quicklist 2: per node a container kind and a string
      if (!r.length(n)) return false;
      for (std::uint64_t i = 0; i < n; ++i) {
        std::uint64_t container = 0;
        if (!r.length(container) || !r.string(nullptr)) return false;
      }
      return true;
    default:  // streams, modules
      return std::nullopt;
  }
}

}  // namespace

RdbSummary summarize_rdb(std::string_view data) {
  RdbSummary s;
  if (data.size() < 9 || data.substr(0, 5) != "REDIS") {
    s.problem = "not an RDB file (no REDIS header)";
    return s;
  }
  s.version = std::atoi(std::string(data.substr(5, 4)).c_str());
  Reader r(data.substr(9));
  const auto truncated = [&] {
    s.problem = "the walk stopped at the end of the bytes read";
    return s;
  };
  while (true) {
    unsigned char op = 0;
    if (!r.byte(op)) return truncated();
    std::uint64_t n = 0, m = 0;
    switch (op) {
      case 0xFF:  // EOF
        s.complete = true;
        return s;
      case 0xFA: {  // AUX
        std::string key, value;
        if (!r.string(&key) || !r.string(&value)) return truncated();
        s.aux[key] = value;
        break;
      }
      case 0xFE:  // SELECTDB
        if (!r.length(n)) return truncated();
        s.keys[static_cast<int>(n)] = 0;
        break;
      case 0xFB:  // RESIZEDB: keys, keys with an expiry
        if (!r.length(n) || !r.length(m)) return truncated();
        if (!s.keys.empty()) s.keys.rbegin()->second = static_cast<std::int64_t>(n);
        break;
      case 0xFD:  // EXPIRETIME (seconds)
        if (!r.skip(4)) return truncated();
        break;
      case 0xFC:  // EXPIRETIME_MS
        if (!r.skip(8)) return truncated();
        break;
      case 0xF8:  // IDLE
        if (!r.length(n)) return truncated();
        break;
      case 0xF9:  // FREQ
        if (!r.skip(1)) return truncated();
        break;
      case 0xF5:  // FUNCTION2: the library's code
        if (!r.string(nullptr)) return truncated();
        break;
      default: {  // a key and its value
        if (op == 0xF7 || op == 0xF6) {
          s.problem = "module or function data (opcode " + std::to_string(op) + ")";
          return s;
        }
        if (!r.string(nullptr)) return truncated();
        const auto skipped = skip_value(r, op);
        if (!skipped) {
          s.problem = "value type " + std::to_string(op) + " (stream or module) is not walked";
          return s;
        }
        if (!*skipped) return truncated();
      }
    }
  }
}

}  // namespace dbops::engine::redis
