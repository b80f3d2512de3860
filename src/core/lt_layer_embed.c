/*
 * lt_layer_embed.c: Embedding, the first layer of a net whose x holds
 * indices (whole floats, checked against num_embeddings by
 * lt_model_check_input).  Its input needs no gradient.
 */
#include "lt_layer.h"


void
lt_layer_embed_forward(const lt_layer_run *r)
{
    r->be->embedding_forward(r->be, r->x,
                             r->n * (int) lt_shape_numel(&r->li->in),
                             r->params + r->p[0].offset, r->l->out, r->y);
}


void
lt_layer_embed_backward(const lt_layer_run *r)
{
    r->be->embedding_backward(r->be, r->x,
                              r->n * (int) lt_shape_numel(&r->li->in), r->dy,
                              r->l->out, r->l->in, r->l->padding_idx - 1,
                              r->grad + r->p[0].offset);
}
