// Runs llama.cpp's forward pass (libllama) over nemo-convert's evaluation windows and writes every
// position's logits, so `verify`'s numbers and llama.cpp's can be compared on the same tokens.
// llama-perplexity cannot do that: it prepends BOS and scores only the second half of each window.
//
// Input: a file of little-endian int32 token ids, windows of CTX tokens back to back (what
// scripts/llama/kld.py writes from the fixture's tokenizer). Output: float32 logits
// [windows][CTX][n_vocab]. Each window starts from an empty state (memory cleared), like ours.
//
// build: cc -O2 -o llama-windows scripts/llama/llama-windows.c -I LLAMA/include -I LLAMA/ggml/include \
//          -L LLAMA/build/bin -lllama -Wl,-rpath,LLAMA/build/bin
// usage: llama-windows MODEL.gguf TOKENS.bin CTX OUT.bin THREADS
#include <stdio.h>
#include <stdlib.h>
#include "llama.h"

int main(int argc, char **argv) {
    if (argc != 6) { fprintf(stderr, "usage: llama-windows MODEL.gguf TOKENS.bin CTX OUT.bin THREADS\n"); return 2; }
    const int ctx_n = atoi(argv[3]), threads = atoi(argv[5]);
    FILE *tf = fopen(argv[2], "rb");
    if (!tf) { perror(argv[2]); return 1; }
    fseek(tf, 0, SEEK_END); long bytes = ftell(tf); fseek(tf, 0, SEEK_SET);
    int n_tok = (int)(bytes / 4), windows = n_tok / ctx_n;
    int32_t *tok = malloc(bytes);
    if (fread(tok, 4, n_tok, tf) != (size_t)n_tok) { fprintf(stderr, "short read\n"); return 1; }
    fclose(tf);

    llama_backend_init();
    struct llama_model_params mp = llama_model_default_params();
    mp.use_extra_bufts = false;  // the repacked CPU kernels need AMX state the sandbox may not grant
    struct llama_model *model = llama_model_load_from_file(argv[1], mp);
    if (!model) { fprintf(stderr, "cannot load %s\n", argv[1]); return 1; }
    struct llama_context_params cp = llama_context_default_params();
    cp.n_ctx = ctx_n; cp.n_batch = ctx_n; cp.n_ubatch = ctx_n; cp.n_seq_max = 1;
    cp.n_threads = threads; cp.n_threads_batch = threads;
    struct llama_context *ctx = llama_init_from_model(model, cp);
    if (!ctx) { fprintf(stderr, "cannot create context\n"); return 1; }
    const int n_vocab = llama_vocab_n_tokens(llama_model_get_vocab(model));

    FILE *out = fopen(argv[4], "wb");
    if (!out) { perror(argv[4]); return 1; }
    struct llama_batch batch = llama_batch_init(ctx_n, 0, 1);
    for (int w = 0; w < windows; w++) {
        llama_memory_clear(llama_get_memory(ctx), true);
        batch.n_tokens = ctx_n;
        for (int i = 0; i < ctx_n; i++) {
            batch.token[i] = tok[w * ctx_n + i];
            batch.pos[i] = i;
            batch.n_seq_id[i] = 1;
            batch.seq_id[i][0] = 0;
            batch.logits[i] = 1;
        }
        if (llama_decode(ctx, batch) != 0) { fprintf(stderr, "decode failed in window %d\n", w); return 1; }
        for (int i = 0; i < ctx_n; i++) {
            if (fwrite(llama_get_logits_ith(ctx, i), sizeof(float), n_vocab, out) != (size_t)n_vocab) { perror("write"); return 1; }
        }
    }
    fclose(out);
    fprintf(stderr, "%d windows of %d tokens, %d logits each\n", windows, ctx_n, n_vocab);
    llama_batch_free(batch);
    llama_free(ctx);
    llama_model_free(model);
    return 0;
}
