#include "services/openai/exchange.h"

#include <utility>

namespace entroserve::openai {

void Exchange::Push(Event event) {
  absl::MutexLock lock(&mu_);
  events_.push_back(std::move(event));
}

void Exchange::OnToken(TokenOutput token) {
  Event event;
  event.kind = Event::Kind::kToken;
  event.token = std::move(token);
  Push(std::move(event));
}

void Exchange::OnChoiceEnd(const ChoiceEnd& end) {
  Event event;
  event.kind = Event::Kind::kChoiceEnd;
  event.choice_end = end;
  Push(std::move(event));
}

void Exchange::OnEnd(const GenerationEnd& end) {
  Event event;
  event.kind = Event::Kind::kEnd;
  event.end = end;
  Push(std::move(event));
}

std::vector<Exchange::Event> Exchange::Wait(absl::Duration timeout) {
  absl::MutexLock lock(&mu_);
  auto has_events = [this]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) { return !events_.empty(); };
  mu_.AwaitWithTimeout(absl::Condition(&has_events), timeout);
  return std::exchange(events_, {});
}

void Exchange::SetHandle(std::shared_ptr<GenerationHandle> handle) {
  bool cancel = false;
  {
    absl::MutexLock lock(&mu_);
    handle_ = handle;
    cancel = cancelled_;
  }
  if (cancel) handle->Cancel();
}

void Exchange::Cancel() {
  std::shared_ptr<GenerationHandle> handle;
  {
    absl::MutexLock lock(&mu_);
    cancelled_ = true;
    handle = handle_;
  }
  if (handle) handle->Cancel();
}

bool Exchange::cancelled() const {
  absl::MutexLock lock(&mu_);
  return cancelled_;
}

}  // namespace entroserve::openai
