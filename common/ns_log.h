/*
 * ns_log.h - logging through a process-wide callback.
 *
 * Library code never prints: it calls ns_log(), which forwards to the
 * installed callback. The default callback writes "level: message" to stderr
 * for levels at or above the threshold. Programs (CLI, broker, worker) install
 * their own if they want timestamps or structured output.
 * Thread safety: ns_log() may be called from any thread; set the callback
 * before starting threads.
 */
#ifndef NS_LOG_H
#define NS_LOG_H

typedef enum ns_log_level { NS_LOG_DEBUG = 0, NS_LOG_INFO = 1, NS_LOG_WARN = 2, NS_LOG_ERROR = 3 } ns_log_level;

typedef void (*ns_log_fn)(ns_log_level level, const char *msg, void *user);

/* Install a callback (NULL restores the default stderr logger). */
void ns_log_set_callback(ns_log_fn fn, void *user);

/* Messages below `level` are dropped before formatting. */
void ns_log_set_level(ns_log_level level);
ns_log_level ns_log_get_level(void);

void ns_log(ns_log_level level, const char *fmt, ...)
#if defined(__GNUC__)
    __attribute__((format(printf, 2, 3)))
#endif
    ;

#define NS_LOG_DEBUG_(...) ns_log(NS_LOG_DEBUG, __VA_ARGS__)
#define NS_LOGI(...) ns_log(NS_LOG_INFO, __VA_ARGS__)
#define NS_LOGW(...) ns_log(NS_LOG_WARN, __VA_ARGS__)
#define NS_LOGE(...) ns_log(NS_LOG_ERROR, __VA_ARGS__)

#endif /* NS_LOG_H */
