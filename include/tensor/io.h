/** @file
 * tensor/io.h - checkpoints in the safetensors format.
 *
 * File layout (https://github.com/huggingface/safetensors):
 *
 *   u64 N (little-endian) | N bytes of JSON header | data buffer
 *
 * The header is one JSON object: an optional "__metadata__" map of string to
 * string, and per tensor  "name": {"dtype": "F32"|"F64", "shape": [...],
 * "data_offsets": [begin, end]}  with offsets in bytes relative to the start
 * of the data buffer. Tensors are stored row-major, little-endian, in their
 * own dtype. We pad the header with spaces so the buffer starts on an 8-byte
 * boundary and put F64 tensors before F32 ones, so every tensor is aligned
 * to its element size. The loaders also read "F16" (IEEE 754 binary16) and
 * "BF16" (bfloat16) tensors, 2 bytes per element, as most published
 * checkpoints store them (see tn_load); tn_save writes only F32 and F64.
 * A Python reader needs only struct, json and numpy:
 *
 *   n = struct.unpack("<Q", f.read(8))[0]; hdr = json.loads(f.read(n))
 *   buf = f.read(); b, e = hdr[k]["data_offsets"]
 *   np.frombuffer(buf[b:e], "<f4").reshape(hdr[k]["shape"])
 *
 * Tensor names are the parameter names of the sets (PyTorch state_dict
 * names, e.g. "rnn.weight_ih_l0"), so a checkpoint moves between the two.
 *
 * Errors: every function returns TN_OK or a status and records a message
 * (tn_last_error) that names the function, the file and the problem:
 *   TN_ERR_ARG     bad arguments: NULL, duplicate or reserved names, names
 *                  or strings that are not valid UTF-8;
 *   TN_ERR_DTYPE   a parameter of a dtype other than F32/F64 (save or
 *                  load), or a tensor of a dtype other than "F32", "F64",
 *                  "F16" or "BF16" in the file (the message quotes it);
 *   TN_ERR_IO      the file cannot be opened, read, written, synced or
 *                  renamed (the message includes strerror); also every io
 *                  call when the library was built without jansson;
 *   TN_ERR_FORMAT  the file is not a valid checkpoint (truncated, header
 *                  length beyond the file or above 100 MB, header not JSON
 *                  or not of the shape above, offsets out of range,
 *                  overlapping, leaving gaps, not matching shape x element
 *                  size (8 bytes for F64, 4 for F32, 2 for F16 and BF16;
 *                  the message names the tensor), or a data buffer longer
 *                  than the tensors), or it does not match the parameters
 *                  (missing, unexpected or mis-shaped tensor: the message
 *                  names it and both shapes);
 *   TN_ERR_MEMORY  allocation failed (the message names the function, the
 *                  file and what was being done), inside jansson too.
 * Nothing exits or aborts, and nothing leaks on error paths.
 *
 * jansson allocates through the library's allocator (tn_alloc): the first
 * checkpoint call installs it with json_set_alloc_funcs, which is
 * process-wide. A program that also uses jansson directly must not free,
 * after that call, jansson values it created before it.
 */
#ifndef TENSOR_IO_H
#define TENSOR_IO_H

#include "tensor/nn.h"

#ifdef __cplusplus
extern "C" {
#endif

/* ---- metadata: an ordered map of UTF-8 strings ---- */

typedef struct tn_meta {
    int n, cap;
    char **keys, **values; /* n entries each, owned by the map */
} tn_meta;

/** Empty map (a zero-initialised struct is empty too). */
TN_API void tn_meta_init(tn_meta *m);
/** Free every string and the map's storage; the map is empty afterwards and
 * can be reused. NULL is a no-op. */
TN_API void tn_meta_free(tn_meta *m);
/** Set key to value, both copied. An existing key keeps its position and
 * gets the new value; a new key is appended. TN_ERR_ARG for NULL
 * arguments, TN_ERR_MEMORY when out of memory (the map is unchanged). */
TN_API tn_status tn_meta_set(tn_meta *m, const char *key, const char *value);
/** Value of key, or NULL when absent. The pointer stays valid until the key
 * is set again or the map is freed. */
TN_API const char *tn_meta_get(const tn_meta *m, const char *key);
/** Store an integer as a decimal string. */
TN_API tn_status tn_meta_set_int(tn_meta *m, const char *key, int64_t value);
/** Parse key's value as a decimal int64 into *out: TN_ERR_FORMAT (message
 * naming the key) when absent or not exactly a decimal integer in range;
 * *out is unchanged on error. */
TN_API tn_status tn_meta_get_int(const tn_meta *m, const char *key, int64_t *out);
/** @{ */
/** Store a generator's state as four 16-digit hex words separated by
 * spaces, and read it back (TN_ERR_FORMAT when absent or malformed; *r
 * unchanged on error). Restoring gives the same stream bit for bit. A
 * checkpoint that must resume exactly stores every generator this way. */
TN_API tn_status tn_meta_set_rng(tn_meta *m, const char *key, const tn_rng *r);
TN_API tn_status tn_meta_get_rng(const tn_meta *m, const char *key, tn_rng *r);
/** @} */

/* ---- save and load ---- */

/** Write every tensor of the nsets parameter sets (e.g. a model's and an
 * optimizer's state) and the metadata (NULL or empty: no "__metadata__")
 * to path. The sets are only read; their element type is non-const so one
 * array `tn_params *sets[] = {&model, &opt}` serves tn_save and tn_load.
 * Names must be non-empty, valid UTF-8, unique across all sets and not
 * "__metadata__"; parameters must be F32 or F64 (any strides). Values are
 * written in their own dtype; gradients are not saved.
 *
 * Atomic: the header is built, serialised and read back for comparison,
 * and everything the save needs is allocated, before the file is written to
 * "<path>.tmp.<pid>.<n>" in the same directory, fsync'ed, closed, renamed
 * over path, and the directory is fsync'ed. Where the filesystem has Linux's
 * O_TMPFILE the file is unnamed while it is written and linked to that name
 * once fsync'ed, just before the rename. On any failure before the
 * rename the temporary file is removed and an existing file at path is left
 * byte for byte as it was (a crash mid-write leaves no temporary file with
 * O_TMPFILE, save in the instant between link and rename, and may leave one
 * without; never a half-written checkpoint). Temporary files of path left by
 * processes that no longer exist are removed by the next save. A failure of
 * the final directory fsync returns TN_ERR_IO although the new file is in
 * place; nothing else can fail after the rename. */
TN_API tn_status tn_save(const char *path, tn_params *const *sets, int nsets, const tn_meta *meta);

/** Load path strictly into the parameters of the nsets sets: every tensor
 * in the file must be exactly one parameter of the same name and shape, and
 * every parameter must be in the file. An F32 or F64 tensor is converted to
 * its parameter's dtype (F64 -> F32 rounds to nearest, values beyond the
 * float range become +-inf; F32 -> F64 is exact). meta_out (may be NULL)
 * must be an initialised map; on success it is emptied and filled with the
 * file's metadata.
 *
 * An F16 or BF16 tensor loads into an F32 or F64 parameter exactly: every
 * half-precision value, subnormals included, is a float, and the tensor is
 * loaded as the F32 tensor of those floats would be: bit for bit into a
 * contiguous F32 parameter, through the C conversion to double into an F64
 * or a strided one. Signed zeros keep their sign; F16 subnormals become
 * normal floats, BF16 ones subnormal floats; +-inf stay +-inf; a NaN keeps
 * its sign and its payload in the top bits of the float's fraction, so in
 * a contiguous F32 parameter a signalling NaN stays signalling, as from an
 * F32 file (PyTorch 1.13's F16 -> float32 sets the quiet bit instead; for
 * every other value, and for BF16, the result is PyTorch's
 * .to(torch.float32) bit for bit). As for F32 and F64 tensors, non-finite
 * values are loaded as they are, not refused: a program that needs finite
 * parameters checks them after loading.
 *
 * The whole file is validated and its data buffer read into memory (one
 * temporary copy of the checkpoint's size) before anything is written, so
 * on failure the parameters and meta_out are untouched.
 * Gradients are not touched. Names must be unique across the sets
 * (TN_ERR_ARG otherwise). */
TN_API tn_status tn_load(const char *path, tn_params *const *sets, int nsets, tn_meta *meta_out);

/** Read and validate only the header of path (the data buffer is checked
 * for size, not read) and fill meta_out as tn_load does, so a program can
 * build its model from the metadata before calling tn_load. meta_out is
 * untouched on failure. The metadata is whatever the file says: a program
 * that sizes a model from it must check every value against its own limits
 * first (examples/apps/char_rnn.c's load_checkpoint does); the library refuses
 * shapes whose size overflows (TN_ERR_SHAPE) but not merely wasteful ones. */
TN_API tn_status tn_load_meta(const char *path, tn_meta *meta_out);

/* One tensor of a checkpoint, as listed by tn_load_list. */
typedef struct tn_ckpt_entry {
    char *name;                 /* owned by the array */
    tn_dtype dtype;             /* TN_F32 or TN_F64: the file's F32 or F64, and
                                    TN_F32 for F16 and BF16 (holds them exactly) */
    int ndim;                   /* 0..4 (0: a scalar) */
    int64_t shape[TN_MAX_DIMS]; /* unused trailing dims are 1 */
    const char *file_dtype;     /* as in the file: "F32", "F64", "F16" or
                                    "BF16" (a static string, not freed) */
} tn_ckpt_entry;

/** Validate the header of path (as tn_load_meta) and return its tensors in
 * data-buffer order: *entries is a new array of *n entries, to be freed
 * with tn_ckpt_entries_free (NULL and 0 when the file has no tensors).
 * *entries and *n are untouched on failure. */
TN_API tn_status tn_load_list(const char *path, tn_ckpt_entry **entries, int *n);
/** Free an array from tn_load_list. NULL is a no-op. */
TN_API void tn_ckpt_entries_free(tn_ckpt_entry *entries, int n);

/* ---- seq2seq checkpoints (src/nn/seq2seq.c) ---- */

/** Checkpoints of a seq2seq model. tn_seq2seq_save writes the model's
 * parameters ps (those tn_seq2seq_init created, under its prefix), the
 * optional extra sets (an optimizer's state, ...) and meta, plus the
 * model's options under these keys (format version "1"):
 *   s2s.format "1", s2s.cell (gru, lstm, rnn_tanh, rnn_relu),
 *   s2s.attention (none, bahdanau, luong, general), s2s.bidirectional (0/1),
 *   s2s.src_vocab, s2s.tgt_vocab, s2s.embed, s2s.hidden, s2s.layers,
 *   s2s.dropout, s2s.src_pad, s2s.tgt_pad, s2s.sos, s2s.eos, s2s.prefix.
 * Returns TN_OK or tn_save's error. */
TN_API tn_status tn_seq2seq_save(const char *path, const tn_seq2seq *m, const tn_params *ps,
                                 tn_params *const *extra, int nextra, const tn_meta *meta);
/** The options of path's s2s.* metadata in *o (and in prefix[TN_NAME_MAX]
 * the prefix tn_seq2seq_init was given, "" for none), checked (every key present and in
 * range, TN_ERR_FORMAT naming the file and the key otherwise) and against
 * the file's tensors (both embeddings, the encoder's last recurrent weight
 * and the output layer must have the shapes the options give), so that a
 * model built from them is no larger than the file. The whole metadata in
 * *meta_out when not NULL (the caller frees it). Then tn_seq2seq_init(m,
 * ps, prefix, o, dt, rng) and tn_load(path, {ps, ...}) load the model. */
TN_API tn_status tn_seq2seq_open(const char *path, tn_seq2seq_opts *o, char *prefix,
                                 tn_meta *meta_out);

#ifdef __cplusplus
}
#endif
#endif
