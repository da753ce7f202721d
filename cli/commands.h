/*
 * commands.h - the `nightshift` subcommand table (an X-macro).
 *
 * X(name, function, one-line help). Each command lives in its own cli/cmd_*.c
 * and has the signature `int fn(int argc, char **argv)` where argv[0] is the
 * subcommand name; it returns the process exit code (0 ok, 1 runtime error,
 * 2 usage error). NS_CLI_COMMANDS needs only the engine; NS_CLI_QUEUE_COMMANDS
 * needs the queue library and is compiled in when NS_CLI_HAVE_QUEUE is defined.
 */
#ifndef NS_CLI_COMMANDS_H
#define NS_CLI_COMMANDS_H

#define NS_CLI_COMMANDS(X)                                                                                             \
    X(inspect, ns_cmd_inspect, "show a GGUF file's metadata, tensors and sizes")                                       \
    X(synth, ns_cmd_synth, "write a random-weight model of a real shape (benchmarks, tests)")                          \
    X(plan, ns_cmd_plan, "plan the VRAM arena and predict throughput for a model and budget")                          \
    X(tokenize, ns_cmd_tokenize, "tokenize stdin with a model's tokenizer and print the ids")                          \
    X(generate, ns_cmd_generate, "generate text for a prompt or a file of prompts (continuous batching)")              \
    X(bench, ns_cmd_bench, "measure CPU limits and prefill/decode throughput against them")                            \
    X(logits, ns_cmd_logits, "write a prompt's logits at every position as float32 [n_tokens][n_vocab]")               \
    X(perplexity, ns_cmd_perplexity, "perplexity of a text file (llama-perplexity method)")                            \
    /* one line per command: X(name, ns_cmd_name, "help") \ */

/* The job-queue commands: built only with the queue library (NS_BUILD_JOBS=ON,
 * which makes cli/CMakeLists.txt define NS_CLI_HAVE_QUEUE). */
#define NS_CLI_QUEUE_COMMANDS(X)                                                                                       \
    X(migrate, ns_cmd_migrate, "apply the job-queue schema migrations to PostgreSQL")                                  \
    X(submit, ns_cmd_submit, "submit a JSONL file of jobs as a batch (prints the batch id)")                           \
    X(status, ns_cmd_status, "show a batch's counts, state and throughput")                                            \
    X(watch, ns_cmd_watch, "follow a batch with a live progress bar until it is done")                                 \
    X(results, ns_cmd_results, "export a batch's results in the OpenAI Batch output format")                           \
    X(cancel, ns_cmd_cancel, "cancel a batch (or some of its jobs)")                                                   \
    X(retry, ns_cmd_retry, "requeue a batch's failed jobs")                                                            \
    X(workers, ns_cmd_workers, "list the workers connected to the broker")                                             \
    X(up, ns_cmd_up, "start PostgreSQL, the broker and a worker under a supervisor (one machine)")                     \
    X(down, ns_cmd_down, "stop what `nightshift up` started")                                                          \
    /* one line per command: X(name, ns_cmd_name, "help") \ */

#define NS__CLI_DECL(name, fn, help) int fn(int argc, char **argv);
NS_CLI_COMMANDS(NS__CLI_DECL)
#ifdef NS_CLI_HAVE_QUEUE
NS_CLI_QUEUE_COMMANDS(NS__CLI_DECL)
#endif
#undef NS__CLI_DECL

#endif /* NS_CLI_COMMANDS_H */
