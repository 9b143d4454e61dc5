/** Creates each id tag as Accepted through the CSMS REST API (an existing tag is left as it is). */
export async function registerIdTags(apiUrl: string, idTags: string[]): Promise<number> {
  let created = 0;
  for (const idTag of idTags) {
    const res = await fetch(`${apiUrl.replace(/\/$/, '')}/api/v1/id-tags`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ idTag, status: 'Accepted' }),
    });
    if (res.status === 201) created += 1;
    else if (res.status !== 409) throw new Error(`creating id tag ${idTag} at ${apiUrl} failed: HTTP ${res.status} ${await res.text()}`);
  }
  return created;
}
