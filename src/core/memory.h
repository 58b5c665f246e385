// Giving memory back to the system (issue 13: after a 100,000-rule policy was deleted the
// agent's RSS stayed at its peak). glibc keeps freed memory in its heaps: a chunk goes back
// only from the top of a heap, and a large policy's nodes, rules and indexes are freed in
// between the allocations that stay.
#pragma once

namespace corral {

// Allocations of 256 KiB and more get their own mappings, which free() unmaps. glibc's
// default raises this threshold up to 32 MiB after a large block is freed, and later large
// blocks (a policy's text, its rule vectors and hash tables) then fragment the heap.
void tune_malloc();

// Returns the free pages of every malloc arena to the system (malloc_trim): after a large
// policy is applied (its parse is freed) or deleted. Costs a walk of the free lists.
void release_free_memory();

} // namespace corral
