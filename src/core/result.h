// Errors as values: Result<T> holds either a T or an Error (what failed, why, and a hint).
#pragma once

#include <stdexcept>
#include <string>
#include <utility>
#include <variant>

namespace corral {

struct Error {
  std::string message; // what failed and where, e.g. "open /etc/x: No such file or directory"
  std::string hint;    // what the user can do about it; may be empty
  int err = 0;         // errno when the cause is a system call, else 0

  [[nodiscard]] std::string to_string() const;
};

// An Error built from the current errno: "<what>: <strerror(errno)>".
Error errno_error(const std::string& what, std::string hint = {});

template <class T> class [[nodiscard]] Result {
public:
  Result(T value) : v_(std::move(value)) {}     // NOLINT(google-explicit-constructor)
  Result(Error error) : v_(std::move(error)) {} // NOLINT(google-explicit-constructor)

  [[nodiscard]] bool ok() const { return v_.index() == 0; }
  explicit operator bool() const { return ok(); }

  T& value() & { return checked(); }
  T&& value() && { return std::move(checked()); }
  const T& value() const& { return std::get<0>(v_); }
  T& operator*() & { return checked(); }
  T&& operator*() && { return std::move(checked()); }
  const T& operator*() const& { return value(); }
  T* operator->() { return &checked(); }
  const T* operator->() const { return &std::get<0>(v_); }
  [[nodiscard]] const Error& error() const { return std::get<1>(v_); }

private:
  T& checked() {
    if (!ok()) throw std::logic_error("Result::value() on an error: " + error().message);
    return std::get<0>(v_);
  }
  std::variant<T, Error> v_;
};

template <> class [[nodiscard]] Result<void> {
public:
  Result() = default;
  Result(Error error) : error_(std::move(error)), ok_(false) {} // NOLINT
  [[nodiscard]] bool ok() const { return ok_; }
  explicit operator bool() const { return ok_; }
  [[nodiscard]] const Error& error() const { return error_; }

private:
  Error error_;
  bool ok_ = true;
};

} // namespace corral
