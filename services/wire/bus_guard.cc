#include "services/wire/bus_guard.h"

#include <setjmp.h>
#include <signal.h>

#include <atomic>
#include <cstring>
#include <mutex>

namespace entroserve {
namespace {

// volatile, and fenced in RunBusGuarded: otherwise the compiler sees the store of
// &jump as dead (overwritten by nullptr after an access that cannot read
// it) and drops it, and the handler never finds the jump buffer.
thread_local sigjmp_buf* volatile t_bus_jump = nullptr;
struct sigaction g_previous_bus;

void OnBusError(int signal_number, siginfo_t* info, void* context) {
  // Only a fault of a guarded access itself, not a SIGBUS sent with kill().
  if (t_bus_jump != nullptr && info != nullptr && info->si_code > 0) siglongjmp(*t_bus_jump, 1);
  if ((g_previous_bus.sa_flags & SA_SIGINFO) != 0 && g_previous_bus.sa_sigaction != nullptr) {
    g_previous_bus.sa_sigaction(signal_number, info, context);
    return;
  }
  if (g_previous_bus.sa_handler != SIG_DFL && g_previous_bus.sa_handler != SIG_IGN) {
    g_previous_bus.sa_handler(signal_number);
    return;
  }
  signal(SIGBUS, SIG_DFL);
  raise(SIGBUS);
}

}  // namespace

void InstallBusGuard() {
  static std::once_flag once;
  std::call_once(once, [] {
    struct sigaction action;
    std::memset(&action, 0, sizeof(action));
    action.sa_sigaction = OnBusError;
    action.sa_flags = SA_SIGINFO;
    sigemptyset(&action.sa_mask);
    sigaction(SIGBUS, &action, &g_previous_bus);
  });
}

bool RunBusGuarded(absl::FunctionRef<void()> access) {
  sigjmp_buf jump;
  if (sigsetjmp(jump, /*savemask=*/1) != 0) {
    t_bus_jump = nullptr;
    return false;
  }
  t_bus_jump = &jump;
  std::atomic_signal_fence(std::memory_order_seq_cst);
  access();
  std::atomic_signal_fence(std::memory_order_seq_cst);
  t_bus_jump = nullptr;
  return true;
}

bool GuardedCopy(char* dst, const char* src, size_t n) {
  return RunBusGuarded([&] { std::memcpy(dst, src, n); });
}

bool GuardedLoad(const uint32_t* word, uint32_t* value) {
  return RunBusGuarded([&] { *value = __atomic_load_n(word, __ATOMIC_ACQUIRE); });
}

bool GuardedStore(uint32_t* word, uint32_t value) {
  return RunBusGuarded([&] { __atomic_store_n(word, value, __ATOMIC_RELEASE); });
}

}  // namespace entroserve
