# ref.rb TEMPLATE JSONL [PARTIALS_DIR]: Shopify Liquid reference for the
# benchmark; same contract as `herald render TEMPLATE --each JSONL`.
require 'liquid'
require 'json'
src = File.read(ARGV[0])
if ARGV[2]
  Liquid::Template.file_system = Liquid::LocalFileSystem.new(ARGV[2], '%s.liquid')
end
t = Liquid::Template.parse(src)
out = $stdout
File.foreach(ARGV[1]) do |line|
  next if line.strip.empty?
  out.write(t.render(JSON.parse(line)))
  out.write("\n")
end
