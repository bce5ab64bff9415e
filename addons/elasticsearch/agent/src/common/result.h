// Result<T>: a value or an Error, returned across module boundaries instead of exceptions.
// Error carries a stable machine code (KEYSTORE_CORRUPT, ...) and a sentence for people.
#pragma once

#include <string>
#include <utility>
#include <variant>

namespace agent {

struct Error {
  std::string code;     // stable, for machines: "KEYSTORE_PASSWORD_INCORRECT"
  std::string message;  // for people: names the thing and the cause; never a secret
};

template <typename T>
class [[nodiscard]] Result {
 public:
  Result(T value) : state_(std::move(value)) {}      // NOLINT: implicit by design
  Result(Error error) : state_(std::move(error)) {}  // NOLINT

  bool ok() const { return std::holds_alternative<T>(state_); }
  T& value() { return std::get<T>(state_); }
  const T& value() const { return std::get<T>(state_); }
  const Error& error() const { return std::get<Error>(state_); }

 private:
  std::variant<T, Error> state_;
};

// Status is a Result with no value: success or an Error.
struct Ok {};
using Status = Result<Ok>;

inline Error MakeError(std::string code, std::string message) {
  return Error{std::move(code), std::move(message)};
}

}  // namespace agent
