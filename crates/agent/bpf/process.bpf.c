// The agent's eBPF process sensor: one record per successful exec, written into a ring
// buffer that the agent drains every 50 ms. Everything a DeviceProcessEvents row needs of the
// new process is read here, in the exec'ing task itself, so the agent is not woken for each
// start and a process that exits at once is still reported whole.
//
// Self-contained on purpose (no vmlinux.h, no libbpf headers): the kernel structures below
// list only the fields read, and `preserve_access_index` makes clang record each access as a
// BTF relocation, which the loader rewrites to this kernel's offsets (CO-RE). A field that
// this kernel lacks fails the load, and the agent falls back to the proc connector.
//
// Built by crates/agent/build.rs: clang -target bpf -O2 -g.

typedef unsigned char __u8;
typedef unsigned int __u32;
typedef int __s32;
typedef unsigned long long __u64;

#define SEC(name) __attribute__((section(name), used))
#define __uint(name, val) int (*name)[val]
#define __type(name, val) typeof(val) *name

// Helper ids from the kernel's uapi `enum bpf_func_id`.
static long (*bpf_probe_read_user)(void *dst, __u32 size, const void *src) = (void *)112;
static long (*bpf_probe_read_kernel)(void *dst, __u32 size, const void *src) = (void *)113;
static long (*bpf_probe_read_kernel_str)(void *dst, __u32 size, const void *src) = (void *)115;
static long (*bpf_get_current_comm)(void *buf, __u32 size) = (void *)16;
static __u64 (*bpf_ktime_get_boot_ns)(void) = (void *)125;
static long (*bpf_ringbuf_output)(void *ringbuf, void *data, __u64 size, __u64 flags) = (void *)130;
static void *(*bpf_map_lookup_elem)(void *map, const void *key) = (void *)1;

// Only the fields read; names must match the kernel's BTF.
typedef struct {
    __u32 val;
} kuid_t;

struct cred {
    kuid_t euid;
} __attribute__((preserve_access_index));

struct mm_struct {
    unsigned long arg_start;
    unsigned long arg_end;
} __attribute__((preserve_access_index));

struct task_struct {
    __s32 tgid;
    struct task_struct *real_parent;
    struct task_struct *group_leader;
    struct mm_struct *mm;
    const struct cred *cred;
    __u64 start_boottime;
} __attribute__((preserve_access_index));

struct super_block {
    __u32 s_dev;
} __attribute__((preserve_access_index));

struct inode {
    unsigned long i_ino;
    struct super_block *i_sb;
} __attribute__((preserve_access_index));

struct file {
    struct inode *f_inode;
} __attribute__((preserve_access_index));

struct linux_binprm {
    struct file *file;
    // The interpreter of a script, else the file name given to exec: the image that runs.
    const char *interp;
} __attribute__((preserve_access_index));

struct bpf_raw_tracepoint_args {
    __u64 args[0];
};

// Sizes shared with crates/agent/src/process/ebpf.rs (`Record`). Powers of two: the
// verifier accepts a length masked to one of them as in bounds.
#define PATH_CAP 1024
#define ARGS_CAP 4096
#define COMM_LEN 16

struct exec_record {
    __u32 pid;
    __u32 ppid;
    __u32 euid;
    // Bytes of the argument area (NUL-separated) and how many of them were copied.
    __u32 args_size;
    __u32 args_copied;
    // The image's device (the kernel's encoding: major << 20 | minor) and inode, so that the
    // agent can tell whether the file it opens later is the one that ran.
    __u32 dev;
    __u64 ino;
    __u64 exec_boottime;
    __u64 start_boottime;
    __u64 parent_start_boottime;
    char comm[COMM_LEN];
    char path[PATH_CAP];
    char args[ARGS_CAP];
};

// Records are as long as their arguments (most are a few hundred bytes). User space maps the
// whole buffer, twice over, into the agent's resident memory: 1 MiB is 2 MiB of it.
struct {
    __uint(type, 27); // BPF_MAP_TYPE_RINGBUF
    __uint(max_entries, 1 << 20);
} EXECS SEC(".maps");

// Where a record is put together before it is copied into the ring at its length (a record
// does not fit the 512-byte stack).
struct {
    __uint(type, 6); // BPF_MAP_TYPE_PERCPU_ARRAY
    __uint(max_entries, 1);
    __type(key, __u32);
    __type(value, struct exec_record);
} SCRATCH SEC(".maps");

// Records the ring buffer had no room for (the agent fell behind).
struct {
    __uint(type, 2); // BPF_MAP_TYPE_ARRAY
    __uint(max_entries, 1);
    __type(key, __u32);
    __type(value, __u64);
} LOST SEC(".maps");

static __u64 read_u64(const void *src) {
    __u64 v = 0;
    bpf_probe_read_kernel(&v, sizeof(v), src);
    return v;
}

static void *read_ptr(const void *src) {
    void *p = 0;
    bpf_probe_read_kernel(&p, sizeof(p), src);
    return p;
}

// sched_process_exec(struct task_struct *p, pid_t old_pid, struct linux_binprm *bprm): raw,
// so that no tracefs mount is needed to attach.
SEC("raw_tracepoint/sched_process_exec")
int rampart_exec(struct bpf_raw_tracepoint_args *ctx) {
    struct task_struct *task = (struct task_struct *)ctx->args[0];
    struct linux_binprm *bprm = (struct linux_binprm *)ctx->args[2];
    __u32 key = 0;
    struct exec_record *r = bpf_map_lookup_elem(&SCRATCH, &key);
    if (!r)
        return 0;
    r->exec_boottime = bpf_ktime_get_boot_ns();
    __s32 tgid = 0;
    bpf_probe_read_kernel(&tgid, sizeof(tgid), &task->tgid);
    r->pid = tgid;
    struct task_struct *parent = read_ptr(&task->real_parent);
    __s32 ptgid = 0;
    bpf_probe_read_kernel(&ptgid, sizeof(ptgid), &parent->tgid);
    r->ppid = ptgid;
    // The parent may be a thread: the start time of its process is its group leader's.
    struct task_struct *leader = read_ptr(&parent->group_leader);
    r->parent_start_boottime = read_u64(&leader->start_boottime);
    r->start_boottime = read_u64(&task->start_boottime);
    const struct cred *cred = read_ptr(&task->cred);
    __u32 euid = 0;
    bpf_probe_read_kernel(&euid, sizeof(euid), &cred->euid.val);
    r->euid = euid;
    bpf_get_current_comm(r->comm, sizeof(r->comm));

    struct file *file = read_ptr(&bprm->file);
    struct inode *inode = read_ptr(&file->f_inode);
    r->ino = read_u64(&inode->i_ino);
    struct super_block *sb = read_ptr(&inode->i_sb);
    __u32 dev = 0;
    bpf_probe_read_kernel(&dev, sizeof(dev), &sb->s_dev);
    r->dev = dev;
    const char *interp = read_ptr(&bprm->interp);
    r->path[0] = 0;
    bpf_probe_read_kernel_str(r->path, sizeof(r->path), interp);

    // The new image's arguments, laid out by exec in the task's own (current) memory.
    struct mm_struct *mm = read_ptr(&task->mm);
    __u64 start = read_u64(&mm->arg_start);
    __u64 end = read_u64(&mm->arg_end);
    __u64 size = end > start ? end - start : 0;
    __u32 copy = size < ARGS_CAP ? size : ARGS_CAP;
    r->args_size = size;
    r->args_copied = 0;
    if (copy > 0 && bpf_probe_read_user(r->args, copy, (void *)start) == 0)
        r->args_copied = copy;
    __u64 len = __builtin_offsetof(struct exec_record, args) + r->args_copied;
    if (len > sizeof(*r))
        return 0;
    if (bpf_ringbuf_output(&EXECS, r, len, 0) != 0) {
        __u64 *lost = bpf_map_lookup_elem(&LOST, &key);
        if (lost)
            __sync_fetch_and_add(lost, 1);
    }
    return 0;
}

// This file is offered under the GPL as well as the project's Apache-2.0: the kernel lets only
// GPL-compatible programs call the probe-read helpers.
char LICENSE[] SEC("license") = "GPL";
