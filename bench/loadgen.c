/*
 * The benchmark's own HTTP/1.1 load generator, for the two measurements wrk
 * cannot make:
 *
 *   open    Send requests at a fixed rate, each at its scheduled time, over a
 *           pool of keep-alive connections. Latency is measured from the
 *           scheduled send time, so time spent waiting for a free connection
 *           (queueing) is counted instead of hidden.
 *   stream  Keep N streaming requests in flight, one per connection, each
 *           started again as soon as the last one ends. Records time to first
 *           server-sent event, gaps between events, and whole-stream time.
 *
 * Usage:
 *   loadgen open   HOST PORT REQUEST_FILE CONNECTIONS SECONDS RATE
 *   loadgen stream HOST PORT REQUEST_FILE CONNECTIONS SECONDS EVENTS
 *
 * REQUEST_FILE contains the complete raw request (request line, headers, body).
 * EVENTS is how many events a stream is expected to carry before its end
 * marker: those are timed (the first one from the send time, the others from
 * the event before), later ones such as `data: [DONE]` are only counted, and a
 * stream with fewer is counted as short. Results are one JSON object on stdout.
 * Every run stops by itself: the schedule ends after SECONDS, and requests
 * still in flight DRAIN_SECONDS later are counted as unfinished.
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/timerfd.h>
#include <time.h>
#include <unistd.h>

#define DRAIN_SECONDS 10.0
#define HEAD_MAX 16384
#define READ_BUFFER 65536
#define TIMER_TAG UINT64_MAX

enum mode { MODE_OPEN, MODE_STREAM };
enum parse_state { P_HEAD, P_BODY_LENGTH, P_CHUNK_SIZE, P_CHUNK_DATA, P_CHUNK_END, P_TRAILER, P_BODY_EOF };
enum parse_result { PARSE_MORE, PARSE_DONE, PARSE_ERROR };

struct samples {
    double *values;
    size_t count, capacity;
};

struct conn {
    int fd;
    int busy;
    size_t written;
    double scheduled, sent_at;

    enum parse_state state;
    char head[HEAD_MAX];
    size_t head_len;
    int status, close_after;
    long long body_left, chunk_left;
    int line_chars;
    int in_extension;

    int events;
    int previous_newline;
    double last_event;
};

struct run {
    enum mode mode;
    struct sockaddr_in address;
    char *request;
    size_t request_len;
    int connections;
    double seconds, rate;
    int events_timed;

    int epoll_fd, timer_fd;
    struct conn *conns;
    int *idle;
    int idle_count;
    int in_flight;

    double t0;
    long long scheduled_total, dispatched;
    int started_conns;
    double ramp_seconds;

    long long completed, non_2xx, errors, short_streams, reconnects;
    struct samples latency, service, send_lag, first_event, gaps, durations;
};

static double now_seconds(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static void fail(const char *step) {
    fprintf(stderr, "loadgen: %s failed: %s\n", step, strerror(errno));
    exit(2);
}

static void add_sample(struct samples *s, double value) {
    if (s->count == s->capacity) {
        s->capacity = s->capacity ? s->capacity * 2 : 4096;
        s->values = realloc(s->values, s->capacity * sizeof(double));
        if (!s->values) fail("realloc");
    }
    s->values[s->count++] = value;
}

static int compare_doubles(const void *a, const void *b) {
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

/* Nearest-rank percentile of sorted values. */
static double percentile(const struct samples *s, double p) {
    if (s->count == 0) return NAN;
    size_t rank = (size_t)ceil(p / 100.0 * (double)s->count);
    if (rank < 1) rank = 1;
    return s->values[rank - 1];
}

static void print_summary(const char *name, struct samples *s, int last) {
    double sum = 0;
    qsort(s->values, s->count, sizeof(double), compare_doubles);
    for (size_t i = 0; i < s->count; i++) sum += s->values[i];
    if (s->count == 0) {
        printf("\"%s\":{\"count\":0}%s", name, last ? "" : ",");
        return;
    }
    /* Samples are kept in seconds and printed in milliseconds. */
    printf("\"%s\":{\"count\":%zu,\"mean\":%.4f,\"p50\":%.4f,\"p90\":%.4f,\"p99\":%.4f,\"p999\":%.4f,\"max\":%.4f}%s",
           name, s->count, sum / (double)s->count * 1e3, percentile(s, 50) * 1e3, percentile(s, 90) * 1e3,
           percentile(s, 99) * 1e3, percentile(s, 99.9) * 1e3, s->values[s->count - 1] * 1e3, last ? "" : ",");
}

static void watch(struct run *r, struct conn *c, uint32_t events, int op) {
    struct epoll_event ev = {.events = events, .data.u64 = (uint64_t)(c - r->conns)};
    if (epoll_ctl(r->epoll_fd, op, c->fd, &ev) < 0) fail("epoll_ctl");
}

static void open_connection(struct run *r, struct conn *c) {
    int one = 1;
    c->fd = socket(AF_INET, SOCK_STREAM, 0);
    if (c->fd < 0) fail("socket");
    /* A blocking connect is fine here: the target is on the loopback interface. */
    if (connect(c->fd, (struct sockaddr *)&r->address, sizeof(r->address)) < 0) fail("connect");
    setsockopt(c->fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
    fcntl(c->fd, F_SETFL, fcntl(c->fd, F_GETFL) | O_NONBLOCK);
    watch(r, c, EPOLLIN, EPOLL_CTL_ADD);
}

static void reset_parser(struct conn *c) {
    c->state = P_HEAD;
    c->head_len = 0;
    c->status = 0;
    c->close_after = 0;
    c->body_left = -1;
    c->chunk_left = 0;
    c->line_chars = 0;
    c->in_extension = 0;
    c->events = 0;
    c->previous_newline = 0;
}

static void arm_timer(struct run *r, double at) {
    struct itimerspec spec = {0};
    if (at > 0) {
        spec.it_value.tv_sec = (time_t)at;
        spec.it_value.tv_nsec = (long)((at - (double)(time_t)at) * 1e9);
        if (spec.it_value.tv_sec == 0 && spec.it_value.tv_nsec == 0) spec.it_value.tv_nsec = 1;
    }
    if (timerfd_settime(r->timer_fd, TFD_TIMER_ABSTIME, &spec, NULL) < 0) fail("timerfd_settime");
}

/* Write what is left of the request; wait for EPOLLOUT when the socket is full. */
static int flush_request(struct run *r, struct conn *c) {
    while (c->written < r->request_len) {
        ssize_t n = write(c->fd, r->request + c->written, r->request_len - c->written);
        if (n < 0) {
            if (errno == EAGAIN) {
                watch(r, c, EPOLLIN | EPOLLOUT, EPOLL_CTL_MOD);
                return 0;
            }
            return -1;
        }
        c->written += (size_t)n;
    }
    watch(r, c, EPOLLIN, EPOLL_CTL_MOD);
    return 0;
}

static void reconnect(struct run *r, struct conn *c) {
    epoll_ctl(r->epoll_fd, EPOLL_CTL_DEL, c->fd, NULL);
    close(c->fd);
    r->reconnects++;
    open_connection(r, c);
}

static void start_request(struct run *r, struct conn *c, double scheduled) {
    c->busy = 1;
    c->written = 0;
    c->scheduled = scheduled;
    c->sent_at = now_seconds();
    reset_parser(c);
    r->in_flight++;
    if (flush_request(r, c) < 0) {
        r->errors++;
        r->in_flight--;
        c->busy = 0;
        reconnect(r, c);
    }
}

static void on_event_boundary(struct run *r, struct conn *c, double now) {
    int index = c->events++;
    /* Only streams started after the ramp are recorded; events past the timed ones are counted only. */
    if (r->mode != MODE_STREAM || c->sent_at < r->t0 + r->ramp_seconds || index >= r->events_timed) return;
    if (index == 0) add_sample(&r->first_event, now - c->sent_at);
    else add_sample(&r->gaps, now - c->last_event);
    c->last_event = now;
}

/* Count server-sent event boundaries (a blank line) in body bytes; CR is ignored. */
static void scan_events(struct run *r, struct conn *c, const char *p, size_t n, double now) {
    for (size_t i = 0; i < n; i++) {
        if (p[i] == '\r') continue;
        if (p[i] == '\n') {
            if (c->previous_newline) {
                on_event_boundary(r, c, now);
                c->previous_newline = 0;
            } else {
                c->previous_newline = 1;
            }
        } else {
            c->previous_newline = 0;
        }
    }
}

static int parse_head(struct conn *c) {
    c->head[c->head_len] = '\0';
    if (c->head_len < 12 || strncmp(c->head, "HTTP/1.", 7) != 0) return -1;
    c->status = atoi(c->head + 9);

    int chunked = 0;
    for (char *line = strstr(c->head, "\r\n"); line && line[2] != '\r'; line = strstr(line + 2, "\r\n")) {
        char *name = line + 2;
        if (strncasecmp(name, "content-length:", 15) == 0) {
            c->body_left = atoll(name + 15);
        } else if (strncasecmp(name, "transfer-encoding:", 18) == 0) {
            chunked = strcasestr(name, "chunked") != NULL && strcasestr(name, "chunked") < strstr(name, "\r\n");
        } else if (strncasecmp(name, "connection:", 11) == 0) {
            char *end = strstr(name, "\r\n");
            char *close_word = strcasestr(name, "close");
            c->close_after = close_word != NULL && close_word < end;
        }
    }
    if (chunked) {
        c->state = P_CHUNK_SIZE;
    } else if (c->body_left >= 0) {
        c->state = P_BODY_LENGTH;
    } else {
        c->state = P_BODY_EOF;
    }
    return 0;
}

static int hex_digit(char ch) {
    if (ch >= '0' && ch <= '9') return ch - '0';
    if (ch >= 'a' && ch <= 'f') return ch - 'a' + 10;
    if (ch >= 'A' && ch <= 'F') return ch - 'A' + 10;
    return -1;
}

/* Feed bytes read from the socket into the response parser. */
static enum parse_result feed(struct run *r, struct conn *c, const char *p, size_t n, double now) {
    size_t i = 0;
    while (i < n) {
        switch (c->state) {
        case P_HEAD: {
            size_t old_len = c->head_len;
            size_t take = n - i;
            if (take > HEAD_MAX - 1 - old_len) take = HEAD_MAX - 1 - old_len;
            memcpy(c->head + old_len, p + i, take);
            c->head_len += take;
            size_t search_from = old_len >= 3 ? old_len - 3 : 0;
            char *end = memmem(c->head + search_from, c->head_len - search_from, "\r\n\r\n", 4);
            if (!end) {
                if (c->head_len == HEAD_MAX - 1) return PARSE_ERROR;
                return PARSE_MORE;
            }
            c->head_len = (size_t)(end - c->head) + 4;
            i += c->head_len - old_len;
            if (parse_head(c) < 0) return PARSE_ERROR;
            if (c->state == P_BODY_LENGTH && c->body_left == 0) return i == n ? PARSE_DONE : PARSE_ERROR;
            break;
        }
        case P_BODY_LENGTH: {
            size_t take = n - i;
            if ((long long)take > c->body_left) return PARSE_ERROR;
            scan_events(r, c, p + i, take, now);
            c->body_left -= (long long)take;
            i += take;
            if (c->body_left == 0) return PARSE_DONE;
            break;
        }
        case P_BODY_EOF:
            scan_events(r, c, p + i, n - i, now);
            i = n;
            break;
        case P_CHUNK_SIZE: {
            char ch = p[i++];
            if (ch == '\n') {
                if (c->line_chars == 0) return PARSE_ERROR;
                c->state = c->chunk_left == 0 ? P_TRAILER : P_CHUNK_DATA;
                c->line_chars = 0;
                c->in_extension = 0;
            } else if (ch == ';') {
                c->in_extension = 1;
            } else if (ch != '\r' && !c->in_extension) {
                int digit = hex_digit(ch);
                if (digit < 0) return PARSE_ERROR;
                c->chunk_left = c->chunk_left * 16 + digit;
                c->line_chars++;
            }
            break;
        }
        case P_CHUNK_DATA: {
            size_t take = n - i;
            if ((long long)take > c->chunk_left) take = (size_t)c->chunk_left;
            scan_events(r, c, p + i, take, now);
            c->chunk_left -= (long long)take;
            i += take;
            if (c->chunk_left == 0) c->state = P_CHUNK_END;
            break;
        }
        case P_CHUNK_END:
            if (p[i++] == '\n') {
                c->state = P_CHUNK_SIZE;
                c->line_chars = 0;
            }
            break;
        case P_TRAILER: {
            char ch = p[i++];
            if (ch == '\n') {
                if (c->line_chars == 0) return i == n ? PARSE_DONE : PARSE_ERROR;
                c->line_chars = 0;
            } else if (ch != '\r') {
                c->line_chars++;
            }
            break;
        }
        }
    }
    return PARSE_MORE;
}

static int sending_allowed(struct run *r, double now) {
    return now < r->t0 + r->ramp_seconds + r->seconds;
}

static void record_completion(struct run *r, struct conn *c, double now) {
    if (c->status < 200 || c->status > 299) {
        r->non_2xx++;
        return;
    }
    r->completed++;
    if (r->mode == MODE_OPEN) {
        add_sample(&r->latency, now - c->scheduled);
        add_sample(&r->service, now - c->sent_at);
        add_sample(&r->send_lag, c->sent_at - c->scheduled);
        return;
    }
    /* Streams that started during the ramp are not recorded, only counted. */
    if (c->sent_at < r->t0 + r->ramp_seconds) return;
    add_sample(&r->durations, now - c->sent_at);
    if (c->events < r->events_timed) r->short_streams++;
}

static void dispatch_open(struct run *r, double now) {
    long long due = (long long)floor((now - r->t0) * r->rate) + 1;
    if (due > r->scheduled_total) due = r->scheduled_total;
    while (r->dispatched < due && r->idle_count > 0) {
        struct conn *c = &r->conns[r->idle[--r->idle_count]];
        start_request(r, c, r->t0 + (double)r->dispatched / r->rate);
        r->dispatched++;
    }
    if (r->dispatched < r->scheduled_total) arm_timer(r, r->t0 + (double)r->dispatched / r->rate);
    else arm_timer(r, 0);
}

/* Start the connections whose staggered start time has come. */
static void dispatch_stream_starts(struct run *r, double now) {
    double step = r->ramp_seconds / (double)r->connections;
    while (r->started_conns < r->connections && r->t0 + step * r->started_conns <= now) {
        start_request(r, &r->conns[r->started_conns], now);
        r->started_conns++;
    }
    if (r->started_conns < r->connections) arm_timer(r, r->t0 + step * r->started_conns);
    else arm_timer(r, 0);
}

static void finish_request(struct run *r, struct conn *c, double now) {
    c->busy = 0;
    r->in_flight--;
    if (c->close_after) reconnect(r, c);
    if (r->mode == MODE_OPEN) {
        r->idle[r->idle_count++] = (int)(c - r->conns);
        dispatch_open(r, now);
    } else if (sending_allowed(r, now)) {
        start_request(r, c, now);
    }
}

static void on_readable(struct run *r, struct conn *c, char *buffer) {
    for (;;) {
        ssize_t n = read(c->fd, buffer, READ_BUFFER);
        double now = now_seconds();
        if (n < 0 && errno == EAGAIN) return;
        if (n <= 0) {
            /* The server closed the connection: complete a close-delimited body, else count an error. */
            int was_busy = c->busy;
            if (was_busy && c->state == P_BODY_EOF) {
                record_completion(r, c, now);
            } else if (was_busy) {
                r->errors++;
            }
            c->close_after = 1;
            if (was_busy) finish_request(r, c, now);
            else reconnect(r, c);
            return;
        }
        if (!c->busy) {
            r->errors++;
            reconnect(r, c);
            return;
        }
        enum parse_result result = feed(r, c, buffer, (size_t)n, now);
        if (result == PARSE_ERROR) {
            r->errors++;
            c->close_after = 1;
            finish_request(r, c, now);
            return;
        }
        if (result == PARSE_DONE) {
            record_completion(r, c, now);
            finish_request(r, c, now);
            return;
        }
    }
}

static void run_loop(struct run *r) {
    struct epoll_event events[512];
    char *buffer = malloc(READ_BUFFER);
    double deadline = r->t0 + r->ramp_seconds + r->seconds + DRAIN_SECONDS;

    for (;;) {
        double now = now_seconds();
        int schedule_done = r->mode == MODE_OPEN ? r->dispatched >= r->scheduled_total
                                                 : !sending_allowed(r, now) && r->started_conns == r->connections;
        if ((schedule_done && r->in_flight == 0) || now > deadline) break;

        int timeout_ms = (int)ceil((deadline - now) * 1e3);
        int count = epoll_wait(r->epoll_fd, events, 512, timeout_ms > 0 ? timeout_ms : 1);
        if (count < 0 && errno != EINTR) fail("epoll_wait");
        for (int i = 0; i < count; i++) {
            if (events[i].data.u64 == TIMER_TAG) {
                uint64_t expirations;
                if (read(r->timer_fd, &expirations, sizeof(expirations)) < 0 && errno != EAGAIN) fail("read timer");
                if (r->mode == MODE_OPEN) dispatch_open(r, now_seconds());
                else dispatch_stream_starts(r, now_seconds());
                continue;
            }
            struct conn *c = &r->conns[events[i].data.u64];
            if ((events[i].events & EPOLLOUT) && c->busy && flush_request(r, c) < 0) {
                r->errors++;
                c->close_after = 1;
                finish_request(r, c, now_seconds());
                continue;
            }
            if (events[i].events & (EPOLLIN | EPOLLHUP | EPOLLERR)) on_readable(r, c, buffer);
        }
    }
    free(buffer);
}

static void load_request(struct run *r, const char *path) {
    FILE *file = fopen(path, "rb");
    struct stat st;
    if (!file || fstat(fileno(file), &st) < 0) {
        fprintf(stderr, "loadgen: cannot read REQUEST_FILE %s: %s\n", path, strerror(errno));
        exit(2);
    }
    r->request_len = (size_t)st.st_size;
    r->request = malloc(r->request_len);
    if (fread(r->request, 1, r->request_len, file) != r->request_len) fail("fread");
    fclose(file);
}

static void print_results(struct run *r, double elapsed) {
    printf("{\"mode\":\"%s\",\"connections\":%d,\"seconds\":%.3f,\"elapsed\":%.3f,", r->mode == MODE_OPEN ? "open" : "stream",
           r->connections, r->seconds, elapsed);
    printf("\"completed\":%lld,\"non_2xx\":%lld,\"errors\":%lld,\"unfinished\":%d,\"reconnects\":%lld,",
           r->completed, r->non_2xx, r->errors, r->in_flight, r->reconnects);
    if (r->mode == MODE_OPEN) {
        printf("\"rate\":%.1f,\"scheduled\":%lld,\"dispatched\":%lld,", r->rate, r->scheduled_total, r->dispatched);
        print_summary("latency_ms", &r->latency, 0);
        print_summary("service_ms", &r->service, 0);
        print_summary("send_lag_ms", &r->send_lag, 1);
    } else {
        printf("\"events_timed\":%d,\"short_streams\":%lld,\"ramp_seconds\":%.3f,", r->events_timed,
               r->short_streams, r->ramp_seconds);
        print_summary("first_event_ms", &r->first_event, 0);
        print_summary("gap_ms", &r->gaps, 0);
        print_summary("duration_ms", &r->durations, 1);
    }
    printf("}\n");
}

int main(int argc, char **argv) {
    struct run r = {0};
    if (argc != 8 || (strcmp(argv[1], "open") != 0 && strcmp(argv[1], "stream") != 0)) {
        fprintf(stderr, "usage: loadgen open|stream HOST PORT REQUEST_FILE CONNECTIONS SECONDS RATE|EVENTS\n");
        return 2;
    }
    r.mode = strcmp(argv[1], "open") == 0 ? MODE_OPEN : MODE_STREAM;
    r.address.sin_family = AF_INET;
    r.address.sin_port = htons((uint16_t)atoi(argv[3]));
    if (inet_pton(AF_INET, argv[2], &r.address.sin_addr) != 1) {
        fprintf(stderr, "loadgen: HOST must be an IPv4 address, got %s\n", argv[2]);
        return 2;
    }
    load_request(&r, argv[4]);
    r.connections = atoi(argv[5]);
    r.seconds = atof(argv[6]);
    if (r.mode == MODE_OPEN) r.rate = atof(argv[7]);
    else r.events_timed = atoi(argv[7]);
    if (r.connections < 1 || r.seconds <= 0 || (r.mode == MODE_OPEN && r.rate <= 0) ||
        (r.mode == MODE_STREAM && r.events_timed < 1)) {
        fprintf(stderr, "loadgen: CONNECTIONS, SECONDS and RATE or EVENTS must be positive\n");
        return 2;
    }

    r.epoll_fd = epoll_create1(0);
    r.timer_fd = timerfd_create(CLOCK_MONOTONIC, TFD_NONBLOCK);
    if (r.epoll_fd < 0 || r.timer_fd < 0) fail("epoll_create1/timerfd_create");
    struct epoll_event timer_event = {.events = EPOLLIN, .data.u64 = TIMER_TAG};
    if (epoll_ctl(r.epoll_fd, EPOLL_CTL_ADD, r.timer_fd, &timer_event) < 0) fail("epoll_ctl timer");

    r.conns = calloc((size_t)r.connections, sizeof(struct conn));
    r.idle = calloc((size_t)r.connections, sizeof(int));
    for (int i = 0; i < r.connections; i++) {
        open_connection(&r, &r.conns[i]);
        r.idle[r.idle_count++] = r.connections - 1 - i;
    }

    /* Streams start staggered over one second, so they do not all tick in step. */
    r.ramp_seconds = r.mode == MODE_STREAM ? 1.0 : 0.0;
    r.t0 = now_seconds() + 0.05;
    if (r.mode == MODE_OPEN) {
        r.scheduled_total = (long long)llround(r.rate * r.seconds);
        arm_timer(&r, r.t0);
    } else {
        arm_timer(&r, r.t0);
    }

    run_loop(&r);
    print_results(&r, now_seconds() - r.t0);
    return 0;
}
