// Every configuration key, declared once. The loader checks keys and types
// against these declarations, and docs/config.md is generated from them (a
// test fails when the two differ).
#pragma once

#include <span>
#include <string>
#include <string_view>

namespace dbops::config {

enum class KeyType {
  kObject,      // a mapping of declared keys
  kObjectList,  // a sequence of objects
  kString,
  kInt,
  kBool,
  kDuration,    // "30s", "5m", "1h30m"
  kSecret,      // a string never printed in clear
  kConnection,  // a connection string; the password inside it is a secret
  kPath,        // a file path, relative to the config file's directory
  kEnum,        // one of `choices`
  kStringMap,   // a mapping of strings to strings
  kStringList,  // a sequence of strings
  kNumberList,  // a sequence of numbers
};

std::string_view key_type_name(KeyType type);

struct KeyDecl {
  // Dotted path; "[]" marks the elements of a list: "targets[].tls.mode".
  std::string_view path;
  KeyType type;
  bool required = false;
  std::string_view default_value;  // as shown in docs; empty for none
  std::string_view choices;        // for kEnum: "a|b|c"
  std::string_view description;
  std::string_view example;  // for docs
};

std::span<const KeyDecl> schema();
const KeyDecl* find_key(std::string_view path);

// The Markdown reference of every key (the generated part of docs/config.md).
std::string schema_markdown();

}  // namespace dbops::config
