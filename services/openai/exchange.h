// One HTTP request's generation: the engine's sink on one side (called on
// the scheduler thread, never blocking), the HTTP worker that writes the
// response on the other, which waits for the events with a timeout so that
// it can look at its connection in between (a client gone cancels the
// generation, which frees its slot at the engine's next step).
//
// Thread-safety: thread-safe.
#ifndef ENTROSERVE_SERVICES_OPENAI_EXCHANGE_H_
#define ENTROSERVE_SERVICES_OPENAI_EXCHANGE_H_

#include <memory>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "model_runner/engine/engine.h"

namespace entroserve::openai {

class Exchange final : public GenerationSink {
 public:
  struct Event {
    enum class Kind { kToken, kChoiceEnd, kEnd };
    Kind kind = Kind::kToken;
    TokenOutput token;
    ChoiceEnd choice_end;
    GenerationEnd end;
  };

  void OnToken(TokenOutput token) override;
  void OnChoiceEnd(const ChoiceEnd& end) override;
  void OnEnd(const GenerationEnd& end) override;

  // The events queued so far, after waiting up to `timeout` for one.
  std::vector<Event> Wait(absl::Duration timeout);

  void SetHandle(std::shared_ptr<GenerationHandle> handle);
  // The client went away (or the response was cut): cancels the generation.
  // Idempotent.
  void Cancel();
  bool cancelled() const;

 private:
  void Push(Event event);

  mutable absl::Mutex mu_;
  std::vector<Event> events_ ABSL_GUARDED_BY(mu_);
  std::shared_ptr<GenerationHandle> handle_ ABSL_GUARDED_BY(mu_);
  bool cancelled_ ABSL_GUARDED_BY(mu_) = false;
};

}  // namespace entroserve::openai

#endif  // ENTROSERVE_SERVICES_OPENAI_EXCHANGE_H_
