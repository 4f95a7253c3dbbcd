// Placeholder replaced once the embedded services exist (src/dev).
export default async function setup() {}
